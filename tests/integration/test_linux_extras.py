"""runtime-spec Linux extras, each observed from inside a container (pyrunc and runc where
runc 1.1.5 has the feature)."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

pytestmark = pytest.mark.privileged


def run_in(rt, make_bundle, cid, script, overrides=None):
    proc = rt.run("run", "-b", str(make_bundle(["sh", "-c", script], overrides)), cid)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout


def test_time_namespace_offsets(pyrunc, make_bundle, cid):
    def timens(c):
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0},
                                     "monotonic": {"secs": 1000, "nanosecs": 0}}
    out = run_in(pyrunc, make_bundle, cid, "cut -d. -f1 /proc/uptime", timens)
    with open("/proc/uptime") as f:
        host = int(f.read().split(".")[0])
    assert int(out) >= host + 86400 * 365 - 5


def test_scheduler_io_priority_personality_affinity(pyrunc, make_bundle, cid):
    def attrs(c):
        c["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
        c["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
        c["process"]["execCPUAffinity"] = {"final": "0"}
        c["linux"]["personality"] = {"domain": "LINUX32"}
    out = run_in(pyrunc, make_bundle, cid,
                 "grep -E '^policy' /proc/self/sched | tr -d ' '; "
                 "cut -d' ' -f19 /proc/self/stat; ionice; uname -m; "
                 "grep Cpus_allowed_list /proc/self/status", attrs)
    lines = out.splitlines()
    assert lines[0] == "policy:3", "SCHED_BATCH is policy 3"
    assert lines[1] == "7", "nice"
    assert lines[2].startswith("idle")
    assert lines[3] in ("i686", "i386")
    assert lines[4].split()[-1] == "0"


def test_memory_policy(pyrunc, make_bundle, cid):
    def policy(c):
        c["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0"}
    out = run_in(pyrunc, make_bundle, cid, "grep -c ' bind:0 ' /proc/self/numa_maps", policy)
    assert int(out) > 0


def test_net_devices_moved_with_address(pyrunc, make_bundle, cid):
    host = f"pyr{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "link", "add", host, "type", "veth", "peer", "name", host + "p"],
                   check=True)
    try:
        subprocess.run(["ip", "addr", "add", "10.123.0.7/24", "dev", host], check=True)

        def netdev(c):
            c["linux"]["netDevices"] = {host: {"name": "ctr0"}}
        out = run_in(pyrunc, make_bundle, cid,
                     "ip -o addr show ctr0; cat /sys/class/net/ctr0/flags", netdev)
        assert "10.123.0.7/24" in out
        assert int(out.split()[-1], 16) & 1
    finally:
        subprocess.run(["ip", "link", "del", host + "p"], capture_output=True)
        subprocess.run(["ip", "link", "del", host], capture_output=True)


def test_idmapped_bind_mount(pyrunc, make_bundle, cid, tmp_path):
    src = tmp_path / "owned"
    src.mkdir()
    (src / "f").write_text("x")
    os.chown(src / "f", 1000, 1000)

    def idmap(c):
        c["mounts"].append({"destination": "/idm", "type": "bind", "source": str(src),
                            "options": ["bind", "idmap"],
                            "uidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}],
                            "gidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}]})
    out = run_in(pyrunc, make_bundle, cid, "stat -c '%u:%g' /idm/f", idmap)
    assert out.strip() == "0:0"
    assert os.stat(src / "f").st_uid == 1000, "the source keeps its owner"


def test_recursive_read_only_and_tmpcopyup(pyrunc, make_bundle, cid, tmp_path):
    outer = tmp_path / "outer"
    (outer / "inner").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(outer / "inner")], check=True)
    try:
        def opts(c):
            c["root"]["readonly"] = False
            c["mounts"].append({"destination": "/rec", "type": "bind", "source": str(outer),
                                "options": ["rbind", "rro"]})
            c["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                                "options": ["tmpcopyup"]})
        out = run_in(pyrunc, make_bundle, cid,
                     "(touch /rec/inner/x) 2>/dev/null || echo inner-ro; cat /etc/hostname; "
                     "grep ' /etc ' /proc/self/mountinfo | cut -d' ' -f9", opts)
        assert out.split() == ["inner-ro", "pyrunc", "tmpfs"]
    finally:
        subprocess.run(["umount", str(outer / "inner")], check=True)


def test_domainname(pyrunc, make_bundle, cid):
    """pyrunc only: runc 1.1.5 ignores `domainname` (it arrived in runc 1.2)."""
    def names(c):
        c["domainname"] = "example.test"
    assert run_in(pyrunc, make_bundle, cid, "cat /proc/sys/kernel/domainname",
                  names).strip() == "example.test"


def test_oom_score_adj(runtime, make_bundle, cid):
    def oom(c):
        c["process"]["oomScoreAdj"] = 500
    assert run_in(runtime, make_bundle, cid, "cat /proc/self/oom_score_adj",
                  oom).strip() == "500"


def test_cgroup_namespace(runtime, make_bundle, cid):
    def cgns(c):
        c["linux"]["namespaces"].append({"type": "cgroup"})
    out = run_in(runtime, make_bundle, cid, "cat /proc/self/cgroup", cgns)
    # the container's cgroup is the namespace's root in every hierarchy (v2: the one "0::/")
    assert out.splitlines() and all(line.endswith(":/") for line in out.splitlines())


def test_intel_rdt_refused_clearly(pyrunc, make_bundle, cid):
    def rdt(c):
        c["linux"]["intelRdt"] = {"closID": "guaranteed_group", "l3CacheSchema": "L3:0=7f0"}
    proc = pyrunc.run("create", "-b", str(make_bundle(["true"], rdt)), cid)
    assert proc.returncode == 1
    assert "linux.intelRdt" in proc.stderr and "resctrl" in proc.stderr
    assert cid not in pyrunc.ids()


def test_selinux_label_without_selinux_is_refused(runtime, make_bundle, cid):
    """No SELinux here: like runc, a process label is an error."""
    def selinux(c):
        c["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"
    proc = runtime.run("run", "-b", str(make_bundle(["true"], selinux)), cid)
    assert proc.returncode == 1
    assert "selinux" in proc.stderr.lower() and "disabled" in proc.stderr


def test_apparmor_and_mount_label_ignored_without_the_lsm(pyrunc, make_bundle, cid):
    """pyrunc only: runc 1.1.5 writes the profile to /proc/self/attr/exec even with no
    AppArmor (and fails), and passes mountLabel as a context= option (which fails); the
    runtime-spec and newer runc ignore both when the LSM is off."""
    def lsm(c):
        c["process"]["apparmorProfile"] = "docker-default"
        c["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0"
    assert run_in(pyrunc, make_bundle, cid, "echo ran", lsm).strip() == "ran"
