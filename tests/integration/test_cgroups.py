"""linux.resources applied to the container's cgroups: every field read back from inside the
container (v1 files on a hybrid host, v2 files on a pure cgroup v2 kernel such as the guest of
tests/guest/run-cgroup-v2) and seen acting. Fields a kernel here cannot show skip, naming what
is missing."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from ociruntime.cgroups.devices import assemble, attach_program, effective_rules
from tests.integration import cgroupfs

pytestmark = pytest.mark.privileged

V2 = cgroupfs.is_unified_only(cgroupfs.discover())
KERNEL = "this cgroup v2 kernel" if V2 else "this cgroup v1 host"


def run_in(rt, make_bundle, cid, script, overrides=None):
    proc = rt.run("run", "-b", str(make_bundle(["sh", "-c", script], overrides)), cid)
    return proc


def cat(controller: str, v1: str, v2: str, first_line: bool = False) -> str:
    """Shell command printing the container's own cgroup file (v1 or v2 name)."""
    name = v2 if V2 else v1
    return f"{'head -n1' if first_line else 'cat'} {cgroupfs.inside(controller, name)}"


def read_back(runtime, make_bundle, cid, resources, commands, overrides=None) -> list[str]:
    """Run a container with `resources` and `commands` (see cat); their output lines."""
    def config(c):
        c["linux"]["resources"] = resources
        if overrides:
            overrides(c)
    proc = run_in(runtime, make_bundle, cid, "; ".join(commands), config)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout.strip("\n").split("\n")


def need(controller: str) -> None:
    """Skip when this kernel has no `controller` (the UML guest has cpu io memory pids)."""
    if not cgroupfs.version(controller):
        pytest.skip(f"needs the {controller} cgroup controller, which {KERNEL} lacks")


def kernel_has(controller: str, v1: str, v2: str) -> bool:
    """True when a new cgroup of `controller`'s hierarchy has the file (made and removed here:
    on v2 the root cgroup lacks most files)."""
    h = cgroupfs.hierarchy(controller)
    if h is None:
        return False
    probe = os.path.join(h.mountpoint, f"pyrunc-probe-{uuid.uuid4().hex[:8]}")
    os.mkdir(probe)
    try:
        return os.path.exists(os.path.join(probe, v2 if h.version == 2 else v1))
    finally:
        os.rmdir(probe)


def a_disk() -> tuple[int, int]:
    """major, minor of a whole disk (not loop/ram/zram): vda here, ubda in the UML guest."""
    with open("/proc/partitions") as f:
        for line in f.readlines()[2:]:
            major, minor, _, name = line.split()
            if os.path.isdir(f"/sys/block/{name}") and not name.startswith(
                    ("loop", "ram", "zram")):
                return int(major), int(minor)
    pytest.skip("no block device on this machine")


def test_memory_read_back(runtime, make_bundle, cid):
    memory = {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20}
    commands = [cat("memory", "memory.limit_in_bytes", "memory.max"),
                cat("memory", "memory.soft_limit_in_bytes", "memory.low"),
                cat("memory", "memory.memsw.limit_in_bytes", "memory.swap.max")]
    # v2 swap.max is the swap alone: the spec's swap (memory+swap, v1's memsw) minus the limit
    expected = [str(64 << 20), str(32 << 20), str((32 if V2 else 96) << 20)]
    if not V2:  # no v2 file: on v2, runc 1.1 ignores these as pyrunc does
        memory.update(swappiness=10, disableOOMKiller=True)
        commands += ["cat /sys/fs/cgroup/memory/memory.swappiness",
                     "head -n1 /sys/fs/cgroup/memory/memory.oom_control"]
        expected += ["10", "oom_kill_disable 1"]
        if runtime.name == "pyrunc":  # runc 1.1 ignores kernelTCP (with a warning)
            memory["kernelTCP"] = 16 << 20
            commands.append("cat /sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes")
            expected.append(str(16 << 20))
    assert read_back(runtime, make_bundle, cid, {"memory": memory}, commands) == expected


def test_unlimited_values_read_back(runtime, make_bundle, cid):
    """-1 means no limit: v1 shows the kernel's maximum (or -1), v2 shows "max"."""
    resources = {"memory": {"limit": -1, "swap": -1}, "pids": {"limit": -1},
                 "cpu": {"quota": -1, "period": 100000}}
    commands = [cat("memory", "memory.limit_in_bytes", "memory.max"),
                cat("memory", "memory.memsw.limit_in_bytes", "memory.swap.max"),
                cat("pids", "pids.max", "pids.max"),
                cat("cpu", "cpu.cfs_quota_us", "cpu.max")]
    page_max = str(((1 << 63) - 1) // 4096 * 4096)
    expected = (["max", "max", "max", "max 100000"] if V2
                else [page_max, page_max, "max", "-1"])
    assert read_back(runtime, make_bundle, cid, resources, commands) == expected


def test_swap_below_the_memory_limit_is_refused(runtime, make_bundle, cid):
    def config(c):
        c["linux"]["resources"] = {"memory": {"limit": 64 << 20, "swap": 32 << 20}}
    proc = runtime.run("run", "-b", str(make_bundle(["true"], config)), cid)
    assert proc.returncode != 0, "swap is memory+swap: below the memory limit is invalid"
    assert cid not in runtime.ids()
    if runtime.name == "pyrunc":
        assert "swap" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_cpu_read_back(runtime, make_bundle, cid):
    cpu = {"shares": 512, "quota": 20000, "period": 50000}
    if V2:  # cpu.weight is runc's conversion of the shares: 1 + (512 - 2) * 9999 // 262142
        commands = [cat("cpu", "", "cpu.weight"), cat("cpu", "", "cpu.max")]
        expected = ["20", "20000 50000"]
    else:
        commands = [cat("cpu", name, "") for name in ("cpu.shares", "cpu.cfs_quota_us",
                                                      "cpu.cfs_period_us")]
        expected = ["512", "20000", "50000"]
    assert read_back(runtime, make_bundle, cid, {"cpu": cpu, "pids": {"limit": 50}},
                     [*commands, cat("pids", "pids.max", "pids.max")]) == [*expected, "50"]


def test_cpu_burst_and_idle_read_back(pyrunc, make_bundle, cid):
    """burst and idle (runtime-spec 1.2); runc 1.1.5 does not know them, so pyrunc alone."""
    cpu = {"quota": 20000, "period": 100000, "burst": 5000, "idle": 1}
    commands = [cat("cpu", "cpu.cfs_burst_us", "cpu.max.burst"),
                cat("cpu", "cpu.idle", "cpu.idle")]
    assert read_back(pyrunc, make_bundle, cid, {"cpu": cpu}, commands) == ["5000", "1"]


def test_cpu_realtime_read_back(runtime, make_bundle, cid):
    if V2:
        pytest.skip("cgroup v2 has no realtime cpu files (cpu.rt_*): runc ignores "
                    "realtimeRuntime/realtimePeriod there, as pyrunc does")
    if not kernel_has("cpu", "cpu.rt_runtime_us", ""):
        pytest.skip(f"{KERNEL} has no cpu.rt_runtime_us (CONFIG_RT_GROUP_SCHED)")

    def below_root(c):  # the root's realtime budget is what a child can take from
        c["linux"]["cgroupsPath"] = f"/pyrunc-test-{cid}"
    cpu = {"realtimePeriod": 500000, "realtimeRuntime": 10000}
    commands = [cat("cpu", "cpu.rt_period_us", ""), cat("cpu", "cpu.rt_runtime_us", "")]
    assert read_back(runtime, make_bundle, cid, {"cpu": cpu}, commands, below_root) == [
        "500000", "10000"]


def test_cpuset_read_back(runtime, make_bundle, cid):
    need("cpuset")
    commands = [cat("cpuset", "cpuset.cpus", "cpuset.cpus"),
                cat("cpuset", "cpuset.mems", "cpuset.mems")]
    assert read_back(runtime, make_bundle, cid, {"cpu": {"cpus": "0", "mems": "0"}},
                     commands) == ["0", "0"]


def test_block_io_throttles_read_back(runtime, make_bundle, cid):
    major, minor = a_disk()
    bio = {f"throttle{k}Device": [{"major": major, "minor": minor, "rate": rate}]
           for k, rate in (("ReadBps", 1 << 20), ("WriteBps", 2 << 20), ("ReadIOPS", 100),
                           ("WriteIOPS", 200))}
    dev = f"{major}:{minor}"
    if V2:
        commands = [cat("io", "", "io.max")]
        expected = [f"{dev} rbps={1 << 20} wbps={2 << 20} riops=100 wiops=200"]
    else:
        commands = [cat("blkio", f"blkio.throttle.{name}", "") for name in (
            "read_bps_device", "write_bps_device", "read_iops_device", "write_iops_device")]
        expected = [f"{dev} {1 << 20}", f"{dev} {2 << 20}", f"{dev} 100", f"{dev} 200"]
    assert read_back(runtime, make_bundle, cid, {"blockIO": bio}, commands) == expected


def test_block_io_weight_read_back(runtime, make_bundle, cid):
    """BFQ takes blkio's weight as it is; v2's io.weight (iocost) runc's conversion of it."""
    controller = "io" if V2 else "blkio"
    files = (("blkio.bfq.weight", "io.bfq.weight", "default 500" if V2 else "500"),
             ("blkio.weight", "io.weight", "default 4950" if V2 else "500"))
    found = next((f for f in files if kernel_has(controller, f[0], f[1])), None)
    if found is None:
        pytest.skip(f"{KERNEL}'s {controller} controller has no weight file (blkio.weight, "
                    "blkio.bfq.weight, io.weight or io.bfq.weight: no BFQ, no iocost)")
    v1, v2, shown = found
    assert read_back(runtime, make_bundle, cid, {"blockIO": {"weight": 500}},
                     [cat(controller, v1, v2)]) == [shown]


def test_hugepage_limits_read_back(runtime, make_bundle, cid):
    need("hugetlb")
    if not os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        pytest.skip("no 2 MiB huge pages on this kernel")
    if runtime.name == "runc" and cgroupfs.version("hugetlb") == 2 and not V2:
        pytest.skip("runc 1.1 takes hugetlb from v1 only; this hybrid host has it on cgroup2")
    commands = [cat("hugetlb", "hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.max")
                if cgroupfs.version("hugetlb") == 1 else
                f"cat {cgroupfs.inside('hugetlb', 'hugetlb.2MB.max')}"]
    limits = [{"pageSize": "2MB", "limit": 8 << 20}]
    assert read_back(runtime, make_bundle, cid, {"hugepageLimits": limits},
                     commands) == [str(8 << 20)]


def test_unified_read_back(runtime, make_bundle, cid):
    if V2:
        unified = {"memory.high": str(48 << 20), "pids.max": "9"}
        commands = [cat("memory", "", "memory.high"), cat("pids", "", "pids.max")]
        expected = [str(48 << 20), "9"]
    else:
        if runtime.name == "runc":
            pytest.skip("runc 1.1 refuses linux.resources.unified on a host with v1 cgroups; "
                        "pyrunc writes it to the hybrid host's cgroup2 hierarchy")
        unified = {"cgroup.max.descendants": "3"}
        commands = [f"cat {cgroupfs.inside('hugetlb', 'cgroup.max.descendants')}"]
        expected = ["3"]
    assert read_back(runtime, make_bundle, cid, {"unified": unified}, commands) == expected


def test_unified_unknown_file_is_refused(runtime, make_bundle, cid):
    def config(c):
        c["linux"]["resources"] = {"unified": {"memory.nonesuch": "1"}}
    proc = runtime.run("run", "-b", str(make_bundle(["true"], config)), cid)
    assert proc.returncode != 0
    assert cid not in runtime.ids()
    if runtime.name == "pyrunc":
        assert "memory.nonesuch" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_nested_cgroups_path_gets_the_controllers(runtime, make_bundle, cid):
    """New parent cgroups pass their controllers down (v2: cgroup.subtree_control)."""
    top = f"pyrunc-test-{cid}"

    def nested(c):
        c["linux"]["cgroupsPath"] = f"/{top}/a/b"
    try:
        commands = [cat("memory", "memory.limit_in_bytes", "memory.max"),
                    cat("pids", "pids.max", "pids.max"), "cat /proc/self/cgroup"]
        lines = read_back(runtime, make_bundle, cid, {"memory": {"limit": 32 << 20},
                                                      "pids": {"limit": 20}}, commands, nested)
        assert lines[:2] == [str(32 << 20), "20"]
        assert f"/{top}/a/b" in "\n".join(lines[2:])
    finally:
        for h in cgroupfs.discover():  # runc leaves the parents it made
            for sub in ("a/b", "a", ""):
                path = os.path.join(h.mountpoint, top, sub).rstrip("/")
                if os.path.isdir(path):
                    os.rmdir(path)


def test_device_rules_enforced(runtime, make_bundle, cid):
    """Allowed opens work and denied ones fail inside the container (v1: devices.allow/deny;
    v2: the eBPF program). Loop devices 7:0 and 7:1 (unbound: opening them is harmless, and
    root may open them here); only open(2) is tried, nothing is read or written."""
    if not os.path.exists("/dev/loop0"):
        pytest.skip("no loop devices (/dev/loop0) on this machine")

    def devices(c):
        c["linux"]["resources"] = {"devices": [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"}]}
        c["linux"]["devices"] = [{"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0,
                                  "fileMode": 0o600}]
        for kind in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][kind].append("CAP_MKNOD")
    script = ("t() { if (eval \"$2\") 2>/dev/null; then echo \"$1 ok\"; else echo \"$1 no\"; "
              "fi; }; t null-rw ': <>/dev/null'; t loop0-r ': </dev/loop0'; "
              "t loop0-w ': >>/dev/loop0'; t mknod 'mknod /dev/loop1 b 7 1'; "
              "t loop1-r ': </dev/loop1'")
    proc = run_in(runtime, make_bundle, cid, script, devices)
    assert proc.returncode == 0, proc.stderr
    # runc's default rules let any node be made (m), not opened
    assert proc.stdout.split("\n")[:5] == ["null-rw ok", "loop0-r ok", "loop0-w no", "mknod ok",
                                           "loop1-r no"]


def test_pause_freezes_the_cgroup(runtime, make_bundle, cid):
    """pause/resume read back from the host: v1 freezer.state, v2 cgroup.freeze/events."""
    path = f"pyrunc-test-{cid}"

    def placed(c):
        c["linux"]["cgroupsPath"] = f"/{path}"
    runtime.run("run", "-d", "-b", str(make_bundle(["sleep", "600"], placed)), cid, check=True)
    h = cgroupfs.hierarchy("freezer") or next(
        h for h in cgroupfs.discover() if h.version == 2)
    base = os.path.join(h.mountpoint, path)

    def frozen() -> str:
        if h.version == 1:
            with open(os.path.join(base, "freezer.state")) as f:
                return f.read().strip()
        with open(os.path.join(base, "cgroup.freeze")) as f, \
                open(os.path.join(base, "cgroup.events")) as g:
            return f.read().strip() + " " + [x for x in g.read().split("\n")
                                              if x.startswith("frozen")][0]
    runtime.run("pause", cid, check=True)
    assert frozen() == ("1 frozen 1" if h.version == 2 else "FROZEN")
    assert runtime.state(cid)["status"] == "paused"
    runtime.run("resume", cid, check=True)
    assert frozen() == ("0 frozen 0" if h.version == 2 else "THAWED")
    assert runtime.state(cid)["status"] == "running"


def test_pids_limit_stops_forks(runtime, make_bundle, cid):
    def limits(c):
        c["linux"]["resources"] = {"pids": {"limit": 5}}
    proc = run_in(runtime, make_bundle, cid,
                  "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; wait; echo done", limits)
    assert "can't fork" in proc.stdout + proc.stderr or "Resource temporarily" in (
        proc.stdout + proc.stderr)


def test_pids_limit_of_one_still_starts_the_container(runtime, make_bundle, cid):
    """pids.max=1: the process itself runs (it does not fork) and sees the limit. pyrunc's
    bootstrap forks the init inside the cgroup, so the limit is set only once it is gone."""
    def limit(c):
        c["linux"]["resources"] = {"pids": {"limit": 1}}
    # Shell builtins only (read, ${#}, exec): a $(...) would fork and fail under the limit.
    script = ('read -r line < /proc/self/cgroup; exec cat "/sys/fs/cgroup${line#0::}/pids.max"'
              if V2 else f"exec cat {cgroupfs.inside('pids', 'pids.max')}")
    proc = runtime.run("run", "-b", str(make_bundle(["sh", "-c", script], limit)), cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"


def test_memory_limit_oom_kills(runtime, make_bundle, cid):
    def limits(c):
        c["linux"]["resources"] = {"memory": {"limit": 16 << 20, "swap": 16 << 20}}
        c["root"]["readonly"] = False
    proc = run_in(runtime, make_bundle, cid,
                  # the pipeline volunteers as the OOM victim (raising one's own
                  # oom_score_adj needs no privilege): the kernel may otherwise pick the shell
                  "(echo 1000 > /proc/self/oom_score_adj; "
                  "head -c 100000000 /dev/zero | tail > /dev/null); echo status=$?", limits)
    assert "Killed" in proc.stderr, "tail holds 100 MB in a 16 MB cgroup: the OOM killer acts"
    assert "status=137" in proc.stdout


def test_ebpf_device_filter_on_cgroup2(tmp_path):
    """The v2 device filter, attached to a cgroup on this host's cgroup2 mount."""
    base = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else \
        "/sys/fs/cgroup"
    path = os.path.join(base, f"pyrunc-bpf-{uuid.uuid4().hex[:6]}")
    os.mkdir(path)
    try:
        attach_program(path, assemble(effective_rules([{"allow": False, "access": "rwm"}])))
        script = ("import os,sys\n"
                  f"open('{path}/cgroup.procs','w').write(str(os.getpid()))\n"
                  "for d in ('/dev/null', '/dev/zero', '/dev/vda'):\n"
                  "    try:\n        os.close(os.open(d, os.O_RDONLY)); print(d, 'allowed')\n"
                  "    except OSError: print(d, 'denied')\n")
        out = subprocess.run(["python3", "-c", script], capture_output=True, text=True,
                             timeout=10).stdout.splitlines()
        assert out == ["/dev/null allowed", "/dev/zero allowed", "/dev/vda denied"]
    finally:
        os.rmdir(path)


def test_update_of_unknown_controller_is_refused(pyrunc, make_bundle, cid):
    def rdma(c):
        c["linux"]["resources"] = {"rdma": {"mlx5_1": {"hcaHandles": 3}}}
    proc = pyrunc.run("create", "-b", str(make_bundle(["true"], rdma)), cid)
    assert proc.returncode == 1
    assert "rdma" in proc.stderr
    assert cid not in pyrunc.ids()
