"""update, events, pause/resume, ps, kill --all and delete on live containers, seen from inside
and from the host. Controller files are read through whichever hierarchy holds them (v1 here,
the unified one on a pure cgroup v2 host), and every test that runc can pass runs against runc
too, so the expectations are runc's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.integration import cgroupfs
from tests.integration.cgroupfs import MEMORY, PIDS, QUOTA, SHARES, SWAP, read_inside
from tests.integration.conftest import reap_zombies

pytestmark = pytest.mark.privileged

SLEEPER = ["sleep", "600"]
EAGAIN = os.strerror(11)  # "Resource temporarily unavailable": a fork past pids.max
EPERM = os.strerror(1)  # "Operation not permitted": a device the cgroup does not allow


def _run(runtime, make_bundle, cid, args=SLEEPER, overrides=None) -> int:
    """run -d a busybox container; its init's host pid."""
    runtime.run("run", "-d", "-b", str(make_bundle(args, overrides)), cid, check=True)
    return runtime.state(cid)["pid"]


def _wait_for(predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _ps_json(runtime, cid: str) -> list[int]:
    return json.loads(runtime.run("ps", "--format", "json", cid, check=True).stdout) or []


def _host_cgroups(pid: int) -> list[str]:
    """The cgroup directories of a live process, on every hierarchy mounted here."""
    found = []
    for h in cgroupfs.discover():
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                key = ",".join(sorted(controllers.split(","))) if controllers else ""
                if key == h.key:
                    found.append(os.path.normpath(h.mountpoint + path))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- update ---------------------------------------------------------------------------------

def test_update_flags_change_limits_live(runtime, make_bundle, cid):
    _run(runtime, make_bundle, cid)
    runtime.run("update", "--memory", "64m", "--pids-limit", "20", "--cpu-share", "256",
                "--cpu-quota", "30000", "--cpu-period", "100000", cid, check=True)
    expected = [MEMORY.text(64 << 20), PIDS.text(20), SHARES.text(256), QUOTA.text(30000)]
    assert read_inside(runtime, cid, MEMORY, PIDS, SHARES, QUOTA) == expected
    runtime.run("update", "--pids-limit", "30", cid, check=True)
    expected[1] = PIDS.text(30)
    assert read_inside(runtime, cid, MEMORY, PIDS, SHARES, QUOTA) == expected, \
        "an update keeps what earlier updates set"


def test_update_resources_json_as_containerd_sends_it(runtime, make_bundle, cid):
    _run(runtime, make_bundle, cid)
    resources = {"devices": [{"allow": False, "access": "rwm"}],
                 "memory": {"limit": 96 << 20, "swap": 128 << 20},
                 "cpu": {"shares": 300, "quota": 40000, "period": 100000},
                 "pids": {"limit": 12}}
    runtime.run("update", "--resources", "-", cid, input=json.dumps(resources), check=True)
    assert read_inside(runtime, cid, MEMORY, PIDS, SHARES, QUOTA) == [
        MEMORY.text(96 << 20), PIDS.text(12), SHARES.text(300), QUOTA.text(40000)]
    swap = runtime.run("exec", cid, "sh", "-c", f"test -e {SWAP.path}").returncode == 0
    if swap:  # kernels without swap accounting have no memsw / swap.max file
        assert read_inside(runtime, cid, SWAP) == [SWAP.text(128 << 20, limit=96 << 20)]
    # raising the limit past the old memory+swap limit (v1 writes memsw first)
    runtime.run("update", "-r", "-", cid, check=True, input=json.dumps(
        {"memory": {"limit": 200 << 20, "swap": 300 << 20}}))
    assert read_inside(runtime, cid, MEMORY) == [MEMORY.text(200 << 20)]
    if swap:
        assert read_inside(runtime, cid, SWAP) == [SWAP.text(300 << 20, limit=200 << 20)]
    # zeros (what a LinuxResources with unset fields carries) leave every limit as it was
    runtime.run("update", "-r", "-", cid, check=True, input=json.dumps(
        {"memory": {"limit": 0, "swap": 0, "reservation": 0}, "pids": {"limit": 0},
         "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": "", "mems": ""},
         "blockIO": {"weight": 0}}))
    assert read_inside(runtime, cid, MEMORY, PIDS, SHARES, QUOTA) == [
        MEMORY.text(200 << 20), PIDS.text(12), SHARES.text(300), QUOTA.text(40000)]


# the init forks on cue (runc's exec, a Go program, needs threads of its own under pids.max)
FORKER = ["sh", "-c", "cue() { while [ ! -e /dev/shm/$1 ]; do sleep 0.05; done; }; "
          "forks() { i=0; while [ $i -lt 6 ]; do sleep 30 & i=$((i+1)); done; echo forked; }; "
          "cue a; (forks) >/dev/shm/r1 2>&1; cue b; (forks) >/dev/shm/r2 2>&1; exec sleep 600"]


def test_update_pids_limit_acts_live(runtime, make_bundle, cid):
    """Forking past pids.max fails with EAGAIN; raising the limit lets the same forks run."""
    init = _run(runtime, make_bundle, cid, FORKER)
    shm = f"/proc/{init}/root/dev/shm"

    def result(name: str) -> str:
        try:
            with open(f"{shm}/{name}") as f:
                text = f.read()
        except OSError:
            return ""
        return text if EAGAIN in text or "forked" in text else ""
    # the init, the subshell and two sleeps: the third sleep cannot fork
    runtime.run("update", "--pids-limit", "4", cid, check=True)
    with open(f"{shm}/a", "w"):
        pass
    limited = _wait_for(lambda: result("r1"), "the first forks")
    assert EAGAIN in limited and "forked" not in limited
    runtime.run("update", "--pids-limit", "50", cid, check=True)
    with open(f"{shm}/b", "w"):
        pass
    free = _wait_for(lambda: result("r2"), "the second forks")
    assert free.split() == ["forked"]


def test_update_is_recorded_in_state(pyrunc, make_bundle, cid):
    """Later updates, and everything reading the state, see the merged resources."""
    def limited(c: dict) -> None:
        c["linux"]["resources"]["memory"] = {"limit": 80 << 20}
    _run(pyrunc, make_bundle, cid, overrides=limited)
    pyrunc.run("update", "--pids-limit", "40", "--memory-reservation", "16m", cid, check=True)
    pyrunc.run("update", "-r", "-", cid, input=json.dumps({"cpu": {"shares": 400}}),
               check=True)
    recorded = json.loads((pyrunc.root / cid / "state.json").read_text())
    resources = recorded["config"]["linux"]["resources"]
    assert resources["memory"] == {"limit": 80 << 20, "reservation": 16 << 20}
    assert resources["pids"] == {"limit": 40}
    assert resources["cpu"] == {"shares": 400}
    assert resources["devices"] == [{"allow": False, "access": "rwm"}]


@pytest.mark.parametrize("args,phrase", [
    (["--memory", "lots"], "invalid size"),
    (["--pids-limit", "many"], "many"),
    (["--memory", "1m"], "does not exist"),
])
def test_update_errors(runtime, make_bundle, cid, args, phrase):
    if phrase != "does not exist":
        _run(runtime, make_bundle, cid)
    target = cid if phrase != "does not exist" else cid + "-nope"
    proc = runtime.run("update", *args, target)
    assert proc.returncode == 1
    assert phrase in proc.stderr.splitlines()[-1]
    if runtime.name == "pyrunc":
        assert len(proc.stderr.strip().splitlines()) == 1


def test_update_rejected_by_the_kernel_names_file_and_value(runtime, make_bundle, cid,
                                                            tmp_path):
    """A CFS quota under 1 ms is refused by v1 and v2 alike: one error line naming the file
    and the value, exit 1, and the limits are as before."""
    _run(runtime, make_bundle, cid)
    runtime.run("update", "--cpu-quota", "50000", "--cpu-period", "100000", cid, check=True)
    log = tmp_path / "log.json"
    proc = runtime.run("update", "--cpu-quota", "500", cid,
                       extra_global=["--log", str(log), "--log-format", "json"])
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "500" in last and ("cpu.cfs_quota_us" in last or "cpu.max" in last)
    assert proc.stdout == ""
    assert read_inside(runtime, cid, QUOTA) == [QUOTA.text(50000)]
    if runtime.name == "pyrunc":
        assert len(proc.stderr.strip().splitlines()) == 1
        errors = [json.loads(line) for line in log.read_text().splitlines()
                  if json.loads(line)["level"] == "error"]
        assert len(errors) == 1 and "500" in errors[0]["msg"]


def test_update_of_a_stopped_container_is_refused(runtime, make_bundle, cid):
    _run(runtime, make_bundle, cid, ["true"])
    _wait_for(lambda: runtime.state(cid)["status"] == "stopped", "the container to stop")
    proc = runtime.run("update", "--memory", "10m", cid)
    assert proc.returncode == 1
    assert "not running" in proc.stderr


# --- events ---------------------------------------------------------------------------------

def test_events_stats_is_one_runc_shaped_document(runtime, make_bundle, cid):
    def limited(c: dict) -> None:
        c["linux"]["resources"].update(memory={"limit": 100 << 20}, pids={"limit": 50})
    _run(runtime, make_bundle, cid, overrides=limited)
    proc = runtime.run("events", "--stats", cid, check=True)
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "stats" and event["id"] == cid
    data = event["data"]
    assert list(data) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                          "network_interfaces"]
    assert {"kernel", "user"} <= set(data["cpu"]["usage"]) and "throttling" in data["cpu"]
    assert data["cpu"]["usage"]["total"] > 0
    for entry in ("usage", "swap", "kernel", "kernelTCP"):  # always there, as in Go
        assert {"limit", "failcnt"} <= set(data["memory"][entry])
    assert data["memory"]["usage"]["limit"] == 100 << 20
    assert data["memory"]["usage"]["usage"] > 0
    assert data["pids"] == {"current": 1, "limit": 50}
    assert all(isinstance(v, dict) and "failcnt" in v for v in data["hugetlb"].values())
    # go-runc's NetworkInterface has no JSON tags: the keys are the Go field names
    for interface in data["network_interfaces"] or []:
        assert set(interface) == {"Name", "RxBytes", "RxPackets", "RxErrors", "RxDropped",
                                  "TxBytes", "TxPackets", "TxErrors", "TxDropped"}


def test_stats_move_when_the_container_works(runtime, make_bundle, cid):
    _run(runtime, make_bundle, cid)

    def stats() -> dict:
        return json.loads(runtime.run("events", "--stats", cid, check=True).stdout)["data"]
    before = stats()
    runtime.run("exec", cid, "sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; "
                "dd if=/dev/zero of=/dev/shm/fill bs=1M count=16 2>/dev/null", check=True)
    runtime.run("exec", "-d", cid, "sleep", "600", check=True)
    after = stats()
    assert after["cpu"]["usage"]["total"] > before["cpu"]["usage"]["total"]
    assert after["pids"]["current"] == before["pids"]["current"] + 1
    assert after["memory"]["usage"]["usage"] >= before["memory"]["usage"]["usage"] + (12 << 20), \
        "16 MiB in /dev/shm are charged to the container"


def _follow(runtime, cid: str, sink, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*runtime.argv, "--root", str(runtime.root), "events", *args, cid],
                            stdout=sink, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def _events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_events_reports_an_oom_kill(runtime, make_bundle, cid, tmp_path):
    def limited(c: dict) -> None:
        c["linux"]["resources"]["memory"] = {"limit": 24 << 20, "swap": 24 << 20}
    _run(runtime, make_bundle, cid, overrides=limited)
    out = tmp_path / "events.jsonl"
    with open(out, "wb") as sink:
        follower = _follow(runtime, cid, sink, "--interval", "1s")
        try:
            time.sleep(0.5)  # let it read the OOM counter it starts from
            hog = runtime.run("exec", cid, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M",
                              "count=1")
            assert hog.returncode == 137, "dd's 64 MiB buffer in a 24 MiB cgroup is OOM-killed"
            _wait_for(lambda: b'"oom"' in out.read_bytes() and b'"stats"' in out.read_bytes(),
                      "the oom event and a stats event")
        finally:
            follower.terminate()  # runc's events runs until the cgroup goes
            follower.communicate(timeout=10)
    events = _events(out)
    assert {"type": "oom", "id": cid} in events
    assert any(e["type"] == "stats" and e["id"] == cid for e in events)


def test_events_follows_until_the_container_is_gone(runtime, make_bundle, cid, tmp_path):
    """Stats every --interval, nothing but JSON on stdout, and the command ends by itself once
    the container is gone (pyrunc when it stops, runc v1 when its cgroups are removed)."""
    _run(runtime, make_bundle, cid)
    out = tmp_path / "events.jsonl"
    with open(out, "wb") as sink:
        follower = _follow(runtime, cid, sink, "--interval", "100ms")
        try:
            _wait_for(lambda: out.read_bytes().count(b"\n") >= 3, "three stats events")
            runtime.run("kill", cid, "KILL", check=True)
            _wait_for(lambda: runtime.state(cid)["status"] == "stopped", "the stop")
            runtime.run("delete", cid, check=True)
            _, err = follower.communicate(timeout=10)
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.communicate()
    assert follower.returncode == 0, err
    assert err == b""
    events = _events(out)
    assert len(events) >= 3
    assert all(e["type"] == "stats" and e["id"] == cid and "cpu" in e["data"] for e in events)


@pytest.mark.parametrize("case", ["missing", "stopped", "interval"])
def test_events_errors(runtime, make_bundle, cid, case):
    if case == "missing":
        proc = runtime.run("events", "--stats", cid)
        phrase = "does not exist"
    elif case == "stopped":
        _run(runtime, make_bundle, cid, ["true"])
        _wait_for(lambda: runtime.state(cid)["status"] == "stopped", "the container to stop")
        proc = runtime.run("events", cid)
        phrase = "is not running"
    else:
        _run(runtime, make_bundle, cid)
        proc = runtime.run("events", "--interval", "0s", cid)
        phrase = "duration interval must be greater than 0"
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert phrase in proc.stderr


# --- pause / resume -------------------------------------------------------------------------

COUNTER = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/counter; "
           "sleep 0.02; done"]


def test_pause_freezes_and_resume_continues(runtime, make_bundle, cid):
    pid = _run(runtime, make_bundle, cid, COUNTER)
    counter = f"/proc/{pid}/root/dev/shm/counter"

    def count() -> int:
        try:
            with open(counter) as f:
                return int(f.read())
        except (OSError, ValueError):  # not written yet, or caught between truncate and write
            return 0
    first = _wait_for(count, "the counter to start")
    _wait_for(lambda: count() > first, "the counter to move")
    runtime.run("pause", cid, check=True)
    assert runtime.state(cid)["status"] == "paused"
    frozen = [count()]
    for _ in range(10):
        time.sleep(0.05)
        frozen.append(count())
    assert len(set(frozen)) == 1, f"the counter moved while paused: {frozen}"
    runtime.run("resume", cid, check=True)
    assert runtime.state(cid)["status"] == "running"
    _wait_for(lambda: count() > frozen[-1], "the counter to move after resume")


def test_pause_and_resume_refuse_the_wrong_state(runtime, make_bundle, cid):
    _run(runtime, make_bundle, cid)
    proc = runtime.run("resume", cid)
    assert proc.returncode == 1 and "container not paused" in proc.stderr
    runtime.run("pause", cid, check=True)
    proc = runtime.run("pause", cid)
    assert proc.returncode == 1 and "container not running" in proc.stderr
    runtime.run("resume", cid, check=True)
    proc = runtime.run("pause", cid + "-nope")
    assert proc.returncode == 1 and "does not exist" in proc.stderr


def test_a_created_container_can_be_paused(runtime, make_bundle, cid):
    """runc pauses a created container; start refuses it until it is resumed."""
    runtime.run("create", "-b", str(make_bundle(SLEEPER)), cid, check=True)
    runtime.run("pause", cid, check=True)
    assert runtime.state(cid)["status"] == "paused"
    assert runtime.run("start", cid).returncode == 1
    runtime.run("resume", cid, check=True)
    assert runtime.state(cid)["status"] == "created"
    runtime.run("start", cid, check=True)
    assert runtime.state(cid)["status"] == "running"


# --- ps and kill --all ----------------------------------------------------------------------

FAMILY = ["sh", "-c", "sleep 601 & sleep 602 & exec sleep 603"]


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode().strip()


def test_ps_lists_the_container_processes(runtime, make_bundle, cid):
    init = _run(runtime, make_bundle, cid, FAMILY)
    pids = _wait_for(lambda: len(_ps_json(runtime, cid)) == 3 and _ps_json(runtime, cid),
                     "three processes")
    assert init in pids
    assert sorted(_cmdline(p) for p in pids) == ["sleep 601", "sleep 602", "sleep 603"]
    runtime.run("exec", "-d", cid, "sleep", "604", check=True)
    assert len(_ps_json(runtime, cid)) == 4


def test_ps_table_runs_the_hosts_ps(runtime, make_bundle, cid):
    if subprocess.run(["ps", "-ef"], capture_output=True).returncode != 0:
        pytest.skip("this host's ps does not work (no boot time in a User-Mode-Linux guest)")
    _run(runtime, make_bundle, cid, FAMILY)
    pids = _wait_for(lambda: len(_ps_json(runtime, cid)) == 3 and _ps_json(runtime, cid),
                     "three processes")
    table = runtime.run("ps", cid, check=True).stdout.splitlines()
    assert "PID" in table[0].split() and "CMD" in table[0].split()
    assert sorted(line.split()[1] for line in table[1:]) == sorted(str(p) for p in pids)
    custom = runtime.run("ps", cid, "-o", "pid,args", check=True).stdout.splitlines()
    assert custom[0].split() == ["PID", "COMMAND"]
    assert sorted(line.split(None, 1)[1] for line in custom[1:]) == [
        "sleep 601", "sleep 602", "sleep 603"]


def test_ps_errors(runtime, make_bundle, cid):
    _run(runtime, make_bundle, cid)
    bad_format = runtime.run("ps", "--format", "xml", cid)
    assert bad_format.returncode == 1 and "invalid format option" in bad_format.stderr
    no_pid = runtime.run("ps", cid, "-o", "comm")
    assert no_pid.returncode == 1 and ("PID" in no_pid.stderr or "boot time" in no_pid.stderr)
    assert runtime.run("ps", cid + "-nope").returncode == 1


def test_kill_all_reaches_every_process(runtime, make_bundle, cid):
    """SIGUSR1 to the init alone changes nothing (a PID 1 without a handler ignores it); with
    --all it ends the two other sleeps; --all KILL ends the container."""
    init = _run(runtime, make_bundle, cid, FAMILY)
    _wait_for(lambda: len(_ps_json(runtime, cid)) == 3, "three processes")
    runtime.run("kill", cid, "USR1", check=True)
    time.sleep(0.1)
    assert len(_ps_json(runtime, cid)) == 3
    runtime.run("kill", "--all", cid, "USR1", check=True)
    _wait_for(lambda: _ps_json(runtime, cid) == [init], "only the init to be left")
    assert runtime.state(cid)["status"] == "running"
    runtime.run("kill", "--all", cid, "KILL", check=True)
    _wait_for(lambda: runtime.state(cid)["status"] == "stopped", "the stop")
    assert _ps_json(runtime, cid) == []


# --- cpuset and devices ---------------------------------------------------------------------

def _allowed_cpus(text: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith("Cpus_allowed_list:"))


def test_cpuset_is_visible_in_proc_status_and_updates_live(runtime, make_bundle, cid):
    if not cgroupfs.version("cpuset") or os.cpu_count() < 2:
        pytest.skip("needs a cpuset controller and two CPUs")

    def pinned(c: dict) -> None:
        c["linux"]["resources"]["cpu"] = {"cpus": "0", "mems": "0"}
    init = _run(runtime, make_bundle, cid, overrides=pinned)
    status = runtime.run("exec", cid, "cat", "/proc/self/status", check=True).stdout
    assert _allowed_cpus(status) == "0"
    runtime.run("update", "--cpuset-cpus", "1", cid, check=True)
    with open(f"/proc/{init}/status") as f:
        assert _allowed_cpus(f.read()) == "1", "the running init moved to CPU 1"
    status = runtime.run("exec", cid, "cat", "/proc/self/status", check=True).stdout
    assert _allowed_cpus(status) == "1"


DEVICE_PROBE = ("echo read; (exec 3</dev/fuse) 2>&1 && echo opened; "
                "echo write; (exec 3>/dev/fuse) 2>&1 && echo opened; true")


@pytest.mark.parametrize("rule,read_ok,write_ok", [
    (None, False, False),
    ({"allow": True, "type": "c", "major": 10, "minor": 229, "access": "r"}, True, False),
    ({"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}, True, True),
])
def test_device_filter_denies_and_allows(runtime, make_bundle, cid, rule, read_ok, write_ok):
    """/dev/fuse (c 10:229) in the container; the device cgroup (v1 list or v2 eBPF filter)
    decides: EPERM when denied; opened (or ENODEV without fuse) when allowed."""
    def with_fuse(c: dict) -> None:
        c["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10,
                                  "minor": 229, "fileMode": 0o666}]
        c["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"}] + (
            [rule] if rule else [])
    proc = runtime.run("run", "-b", str(make_bundle(["sh", "-c", DEVICE_PROBE], with_fuse)),
                       cid)
    assert proc.returncode == 0, proc.stderr
    read, _, write = proc.stdout.partition("write\n")
    assert (EPERM not in read) == read_ok, read
    assert (EPERM not in write) == write_ok, write
    if read_ok:
        assert "opened" in read or "No such device" in read


# --- delete (issue part 5) ------------------------------------------------------------------

def test_delete_force_removes_cgroups_with_lingering_processes(pyrunc, make_bundle, cid):
    """Processes the init did not wait for (a detached exec) do not keep the cgroups alive.
    (runc 1.1 refuses while the killed init is a zombie nobody reaped: no shim here.)"""
    init = _run(pyrunc, make_bundle, cid)
    pyrunc.run("exec", "-d", cid, "sleep", "600", check=True)
    leaves = _host_cgroups(init)
    assert leaves and all(os.path.isdir(p) for p in leaves)
    pyrunc.run("delete", "--force", cid, check=True)
    reap_zombies()  # the detached exec's sleep was adopted by this test process
    assert not any(os.path.exists(p) for p in leaves)


def _no_pid_namespace(c: dict) -> None:
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]


def test_delete_kills_what_outlives_the_init(runtime, make_bundle, cid):
    """Without a PID namespace the init's children outlive it; delete of the stopped
    container kills them and removes the cgroups."""
    _run(runtime, make_bundle, cid, ["sh", "-c", "sleep 600 & sleep 600 & exit 0"],
         _no_pid_namespace)
    _wait_for(lambda: runtime.state(cid)["status"] == "stopped", "the init to exit")
    left = _wait_for(lambda: len(_ps_json(runtime, cid)) == 2 and _ps_json(runtime, cid),
                     "the two sleeps")
    leaves = _host_cgroups(left[0])
    runtime.run("delete", cid, check=True)
    reap_zombies()
    assert not any(_alive(p) for p in left)
    assert not any(os.path.exists(p) for p in leaves)


def test_delete_force_of_a_forking_container(runtime, make_bundle, cid):
    """Processes still forking, with no PID namespace to end them with the init: delete
    kills all of them, however many appear meanwhile, and removes every cgroup."""
    def forking(c: dict) -> None:
        _no_pid_namespace(c)
        c["linux"]["resources"]["pids"] = {"limit": 400}
    forkers = "while true; do sleep 600 & sleep 0.1; done"
    init = _run(runtime, make_bundle, cid, ["sh", "-c", " & ".join([f"({forkers})"] * 4)
                                            + " & exec sleep 900"], forking)
    _wait_for(lambda: len(_ps_json(runtime, cid)) >= 20, "the container to fill up")
    leaves = _host_cgroups(init)
    runtime.run("delete", "--force", cid, check=True)
    reap_zombies()
    assert not any(os.path.exists(p) for p in leaves)


def test_delete_force_of_a_paused_container(runtime, make_bundle, cid):
    init = _run(runtime, make_bundle, cid, FAMILY)
    _wait_for(lambda: len(_ps_json(runtime, cid)) == 3, "three processes")
    pids = _ps_json(runtime, cid)
    leaves = _host_cgroups(init)
    runtime.run("pause", cid, check=True)
    runtime.run("delete", "--force", cid, check=True)
    reap_zombies()
    assert not any(_alive(p) for p in pids)
    assert not any(os.path.exists(p) for p in leaves)


def test_delete_never_removes_a_cgroup_it_did_not_create(pyrunc, make_bundle, cid):
    """A config naming an existing cgroup shares it: delete leaves the directory, and the
    process of the host already in it, alone (runc would remove an empty one)."""
    pids = cgroupfs.hierarchy("pids")
    assert pids is not None
    existing = os.path.join(pids.mountpoint, f"pyrunc-test-{cid}")
    os.mkdir(existing)
    neighbour = subprocess.Popen(["sleep", "600"])
    try:
        with open(os.path.join(existing, "cgroup.procs"), "w") as f:
            f.write(str(neighbour.pid))

        def joined(c: dict) -> None:
            c["linux"]["cgroupsPath"] = f"/pyrunc-test-{cid}"
        _run(pyrunc, make_bundle, cid, overrides=joined)
        pyrunc.run("delete", "--force", cid, check=True)
        assert os.path.isdir(existing), "the pre-existing cgroup was the host's, not ours"
        assert neighbour.poll() is None, "the host's process in it was left alone"
    finally:
        neighbour.kill()
        neighbour.wait()
        for h in cgroupfs.discover():
            path = os.path.join(h.mountpoint, f"pyrunc-test-{cid}")
            if os.path.isdir(path):
                os.rmdir(path)


def test_kill_all_of_a_paused_container_keeps_it_paused(pyrunc, make_bundle, cid):
    """kill --all leaves a paused container paused (v1 tasks act on the signal once resumed;
    v2 ends them at once); SIGKILL ends a paused container on both."""
    _run(pyrunc, make_bundle, cid, FAMILY)
    _wait_for(lambda: len(_ps_json(pyrunc, cid)) == 3, "three processes")
    pyrunc.run("pause", cid, check=True)
    pyrunc.run("kill", "--all", cid, "USR1", check=True)
    assert pyrunc.state(cid)["status"] == "paused"
    pyrunc.run("resume", cid, check=True)
    _wait_for(lambda: len(_ps_json(pyrunc, cid)) == 1, "USR1 to end the sleeps")
    pyrunc.run("pause", cid, check=True)
    pyrunc.run("kill", "--all", cid, signal.Signals.SIGKILL.name, check=True)
    _wait_for(lambda: pyrunc.state(cid)["status"] == "stopped", "the stop")


# --- containerd's shim (go-runc) --------------------------------------------------------------

def test_the_calls_containerds_shim_makes(runtime, make_bundle, cid, tmp_path):
    """The argv go-runc builds (global --log/--log-format json, then update --resources -,
    events --stats, events --interval=Ns, pause, resume, ps --format json with stderr folded
    into the JSON it parses, kill --all ID 9): each succeeds and parses, the log stays clean."""
    init = _run(runtime, make_bundle, cid)
    log = tmp_path / "shim.log"
    shim = ["--log", str(log), "--log-format", "json"]

    def call(*args: str, input: str | None = None) -> str:
        proc = runtime.run(*args, extra_global=shim, input=input, check=True)
        return proc.stdout + proc.stderr  # go-runc's cmdOutput(combined=true)
    resources = {"memory": {"limit": 128 << 20, "swap": 128 << 20},
                 "cpu": {"shares": 512, "quota": 50000, "period": 100000}, "pids": {"limit": 64}}
    assert call("update", "--resources", "-", cid, input=json.dumps(resources) + "\n") == ""
    stats = json.loads(call("events", "--stats", cid))
    assert stats["type"] == "stats" and stats["data"]["pids"] == {"current": 1, "limit": 64}
    assert stats["data"]["memory"]["usage"]["limit"] == 128 << 20
    assert call("pause", cid) == ""
    assert runtime.state(cid)["status"] == "paused"
    assert call("resume", cid) == ""
    assert json.loads(call("ps", "--format", "json", cid)) == [init]
    out = tmp_path / "events.jsonl"
    with open(out, "wb") as sink:
        follower = subprocess.Popen(
            [*runtime.argv, "--root", str(runtime.root), *shim, "events", "--interval=1s", cid],
            stdout=sink, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            _wait_for(lambda: out.read_bytes().count(b"\n") >= 1, "the first stats event")
        finally:
            follower.terminate()
            follower.wait(timeout=10)
    assert json.loads(out.read_text().splitlines()[0])["type"] == "stats"
    assert call("kill", "--all", cid, "9") == ""
    _wait_for(lambda: runtime.state(cid)["status"] == "stopped", "the stop")
    levels = [json.loads(line)["level"] for line in log.read_text().splitlines()] \
        if log.exists() else []
    assert "error" not in levels, log.read_text()
