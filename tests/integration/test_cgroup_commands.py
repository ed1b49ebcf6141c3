"""update, events (stats and OOM) and ps on live containers, seen from inside and from the
host; every test runs against runc too, so the expectations are runc's."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.integration.conftest import reap_zombies

pytestmark = pytest.mark.privileged

SLEEPER = ["sleep", "600"]
LIMITS = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
          "/sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us")


def _inside(runtime, cid: str, script: str) -> list[str]:
    proc = runtime.run("exec", cid, "sh", "-c", script, check=True)
    return proc.stdout.split()


def test_update_flags_change_limits_live(runtime, make_bundle, cid):
    runtime.run("run", "-d", "-b", str(make_bundle(SLEEPER)), cid, check=True)
    runtime.run("update", "--memory", "64m", "--pids-limit", "20", "--cpu-share", "256",
                "--cpu-quota", "30000", cid, check=True)
    assert _inside(runtime, cid, LIMITS) == [str(64 << 20), "20", "256", "30000"]
    runtime.run("update", "--pids-limit", "30", cid, check=True)
    assert _inside(runtime, cid, LIMITS) == [str(64 << 20), "30", "256", "30000"], \
        "an update keeps what earlier updates set"


def test_update_resources_json_as_containerd_sends_it(runtime, make_bundle, cid):
    runtime.run("run", "-d", "-b", str(make_bundle(SLEEPER)), cid, check=True)
    resources = {"devices": [{"allow": False, "access": "rwm"}],
                 "memory": {"limit": 96 << 20, "swap": 128 << 20},
                 "cpu": {"shares": 300, "quota": 40000, "period": 100000},
                 "pids": {"limit": 12}}
    runtime.run("update", "--resources", "-", cid, input=json.dumps(resources), check=True)
    assert _inside(runtime, cid, LIMITS + " /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"
                   ) == [str(96 << 20), "12", "300", "40000", str(128 << 20)]
    # raising the limit above the old swap limit needs memsw written first
    runtime.run("update", "-r", "-", cid, check=True, input=json.dumps(
        {"memory": {"limit": 200 << 20, "swap": 300 << 20}}))
    assert _inside(runtime, cid, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                   "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") == [
        str(200 << 20), str(300 << 20)]


@pytest.mark.parametrize("args,phrase", [
    (["--memory", "lots"], "invalid size"),
    (["--memory", "1m"], "does not exist"),
])
def test_update_errors(runtime, make_bundle, cid, args, phrase):
    if phrase != "does not exist":
        runtime.run("run", "-d", "-b", str(make_bundle(SLEEPER)), cid, check=True)
    target = cid if phrase != "does not exist" else cid + "-nope"
    proc = runtime.run("update", *args, target)
    assert proc.returncode == 1
    assert phrase in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_update_of_a_stopped_container_is_refused(runtime, make_bundle, cid):
    runtime.run("run", "-d", "-b", str(make_bundle(["true"])), cid, check=True)
    deadline = time.monotonic() + 5
    while runtime.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.02)
    proc = runtime.run("update", "--memory", "10m", cid)
    assert proc.returncode == 1
    assert "not running" in proc.stderr


def test_events_stats_is_one_runc_shaped_document(runtime, make_bundle, cid):
    runtime.run("run", "-d", "-b", str(make_bundle(SLEEPER)), cid, check=True)
    proc = runtime.run("events", "--stats", cid, check=True)
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "stats" and event["id"] == cid
    data = event["data"]
    assert {"cpu", "memory", "pids", "blkio", "hugetlb"} <= set(data)
    assert data["pids"]["current"] >= 1
    assert data["memory"]["usage"]["usage"] > 0
    assert data["cpu"]["usage"]["total"] > 0


def test_stats_move_when_the_container_works(runtime, make_bundle, cid):
    runtime.run("run", "-d", "-b", str(make_bundle(SLEEPER)), cid, check=True)

    def stats() -> dict:
        return json.loads(runtime.run("events", "--stats", cid, check=True).stdout)["data"]
    before = stats()
    runtime.run("exec", cid, "sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
                check=True)
    runtime.run("exec", "-d", cid, "sleep", "600", check=True)
    after = stats()
    assert after["cpu"]["usage"]["total"] > before["cpu"]["usage"]["total"]
    assert after["pids"]["current"] == before["pids"]["current"] + 1


def test_events_reports_an_oom_kill(runtime, make_bundle, cid, tmp_path):
    def limited(c: dict) -> None:
        c["linux"]["resources"] = {"memory": {"limit": 24 << 20, "swap": 24 << 20}}
    runtime.run("run", "-d", "-b", str(make_bundle(SLEEPER, limited)), cid, check=True)
    out = tmp_path / "events.jsonl"
    with open(out, "wb") as sink:
        follower = subprocess.Popen([*runtime.argv, "--root", str(runtime.root), "events",
                                     "--interval", "1s", cid], stdout=sink,
                                    stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            hog = runtime.run("exec", cid, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M",
                              "count=1")
            assert hog.returncode == 137, "dd's 64 MiB buffer in a 24 MiB cgroup is OOM-killed"
            deadline = time.monotonic() + 8  # runc's first stats come after one interval
            while not (b'"oom"' in out.read_bytes() and b'"stats"' in out.read_bytes()) and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            follower.terminate()  # runc's events runs until killed; pyrunc's also ends
            follower.wait(timeout=10)  # when the container stops
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert {"type": "oom", "id": cid} in events
    assert any(e["type"] == "stats" for e in events)


def test_delete_force_removes_cgroups_with_lingering_processes(pyrunc, make_bundle, cid):
    """Processes the init did not wait for (a detached exec) do not keep the cgroups alive."""
    pyrunc.run("run", "-d", "-b", str(make_bundle(SLEEPER)), cid, check=True)
    pyrunc.run("exec", "-d", cid, "sleep", "600", check=True)
    state = json.loads((pyrunc.root / cid / "state.json").read_text())
    leaves = [p for k, p in state["cgroup_paths"].items() if not k.startswith("_")]
    assert leaves and all(os.path.isdir(p) for p in leaves)
    pyrunc.run("delete", "--force", cid, check=True)
    reap_zombies()  # the detached exec's sleep was adopted by this test process
    assert not any(os.path.exists(p) for p in leaves)


def test_delete_never_removes_a_cgroup_it_did_not_create(pyrunc, make_bundle, cid):
    existing = f"/sys/fs/cgroup/pids/pyrunc-test-{cid}"
    os.mkdir(existing)
    try:
        def joined(c: dict) -> None:
            c["linux"]["cgroupsPath"] = f"/pyrunc-test-{cid}"
        pyrunc.run("run", "-d", "-b", str(make_bundle(SLEEPER, joined)), cid, check=True)
        pyrunc.run("delete", "--force", cid, check=True)
        assert os.path.isdir(existing), "the pre-existing cgroup was the host's, not ours"
    finally:
        for hierarchy in os.listdir("/sys/fs/cgroup"):
            path = f"/sys/fs/cgroup/{hierarchy}/pyrunc-test-{cid}"
            if os.path.isdir(path):
                os.rmdir(path)
