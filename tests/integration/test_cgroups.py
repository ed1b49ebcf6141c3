"""linux.resources applied to the container's cgroups and seen acting from inside."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from ociruntime.cgroups.devices import assemble, attach_program, effective_rules

pytestmark = pytest.mark.privileged


def run_in(rt, make_bundle, cid, script, overrides=None):
    proc = rt.run("run", "-b", str(make_bundle(["sh", "-c", script], overrides)), cid)
    return proc


def test_limits_read_back_inside(runtime, make_bundle, cid):
    def limits(c):
        c["linux"]["resources"] = {
            "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 10},
            "pids": {"limit": 50},
            "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0"},
        }
    proc = run_in(runtime, make_bundle, cid,
                  "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes "
                  "memory/memory.soft_limit_in_bytes memory/memory.swappiness pids/pids.max "
                  "cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpuset/cpuset.cpus",
                  limits)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(64 << 20), str(32 << 20), "10", "50", "512", "20000",
                                   "100000", "0"]


def test_pids_limit_stops_forks(runtime, make_bundle, cid):
    def limits(c):
        c["linux"]["resources"] = {"pids": {"limit": 5}}
    proc = run_in(runtime, make_bundle, cid,
                  "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; wait; echo done", limits)
    assert "can't fork" in proc.stdout + proc.stderr or "Resource temporarily" in (
        proc.stdout + proc.stderr)


def test_memory_limit_oom_kills(runtime, make_bundle, cid):
    def limits(c):
        c["linux"]["resources"] = {"memory": {"limit": 16 << 20, "swap": 16 << 20}}
        c["root"]["readonly"] = False
    proc = run_in(runtime, make_bundle, cid,
                  "head -c 100000000 /dev/zero | tail > /dev/null; echo status=$?", limits)
    assert "Killed" in proc.stderr, "tail holds 100 MB in a 16 MB cgroup: the OOM killer acts"
    assert "status=137" in proc.stdout


def test_device_rules_v1(runtime, make_bundle, cid):
    def devices(c):
        c["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
        c["linux"]["devices"] = [{"path": "/dev/vda-copy", "type": "b", "major": 254,
                                  "minor": 0, "fileMode": 0o600}]
    proc = run_in(runtime, make_bundle, cid,
                  "cat /dev/null && echo null-ok; head -c1 /dev/vda-copy >/dev/null 2>&1 "
                  "&& echo vda-open || echo vda-denied", devices)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["null-ok", "vda-denied"]


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
