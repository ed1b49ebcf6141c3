"""A container without a mount namespace of its own (config-linux.md#namespaces: a namespace
type not listed is the runtime's, inherited; runtime-tools' linux_ns_itype creates one).

pyrunc makes the config's mounts under the rootfs in the runtime's mount namespace, chroots
the init (and every exec'd process) into the rootfs, and detaches exactly those mounts on
delete. runc 1.1.5 does the same but leaves the mounts on the host after delete (and makes the
host's / rslave), so these tests run against pyrunc alone: the leak check would fail runc.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.privileged

HOST_NS = ("mnt", "pid", "net", "ipc", "uts", "cgroup", "user")


def _shared(config: dict) -> None:
    """No namespaces at all, and nothing that needs a mount namespace."""
    config["linux"]["namespaces"] = []
    for key in ("maskedPaths", "readonlyPaths", "rootfsPropagation"):
        config["linux"].pop(key, None)
    config["root"]["readonly"] = False
    config.pop("hostname", None)
    config.pop("domainname", None)


def _mount_points_under(path: Path) -> list[str]:
    top = str(path)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == top or p.startswith(top + "/")]


def test_inherits_every_namespace_and_sees_its_rootfs(pyrunc, make_bundle, cid):
    bundle = make_bundle(["sh", "-c", "cat /marker; for n in " + " ".join(HOST_NS)
                          + "; do readlink /proc/self/ns/$n; done"],
                         _shared)
    (bundle / "rootfs" / "marker").write_text("inside-the-rootfs\n")
    proc = pyrunc.run("run", "-b", str(bundle), cid)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert lines[0] == "inside-the-rootfs", "the process must be chrooted into the rootfs"
    assert lines[1:] == [os.readlink(f"/proc/self/ns/{n}") for n in HOST_NS]


def test_mounts_live_in_runtime_namespace_and_delete_removes_only_them(pyrunc, make_bundle,
                                                                        cid, tmp_path):
    bundle = make_bundle(["sleep", "100"], _shared)
    rootfs = bundle / "rootfs"
    # a mount the caller made under the rootfs before create must survive delete
    premounted = rootfs / "mnt"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "premounted", str(premounted)],
                   check=True)
    try:
        pyrunc.run("create", "-b", str(bundle), cid, check=True)
        pid = pyrunc.state(cid)["pid"]
        assert os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
        points = _mount_points_under(rootfs)
        for dest in ("/proc", "/dev", "/dev/pts", "/sys"):
            assert str(rootfs) + dest in points, f"{dest} must be mounted in our namespace"
        state = json.loads((pyrunc.root / cid / "state.json").read_text())
        assert str(premounted) not in state["host_mounts"]
        pyrunc.run("delete", "--force", cid, check=True)
        assert _mount_points_under(rootfs) == [str(premounted)]
    finally:
        subprocess.run(["umount", str(premounted)], check=False)


def test_exec_runs_in_the_containers_rootfs(pyrunc, make_bundle, cid):
    bundle = make_bundle(["sleep", "100"], _shared)
    (bundle / "rootfs" / "marker").write_text("exec-sees-rootfs\n")
    pyrunc.run("run", "-d", "-b", str(bundle), cid, check=True)
    proc = pyrunc.run("exec", cid, "sh", "-c", "cat /marker; pwd; readlink /proc/self/ns/mnt")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["exec-sees-rootfs", "/", os.readlink("/proc/self/ns/mnt")]


def test_failed_create_leaves_no_mount(pyrunc, make_bundle, cid, tmp_path):
    def bad_last_mount(config):
        _shared(config)
        config["mounts"].append({"destination": "/mnt/x", "type": "bind",
                                 "source": str(tmp_path / "missing"), "options": ["bind"]})
    bundle = make_bundle(["true"], bad_last_mount)
    proc = pyrunc.run("create", "-b", str(bundle), cid)
    assert proc.returncode == 1
    assert "/mnt/x" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert _mount_points_under(bundle / "rootfs") == []
    assert not (pyrunc.root / cid).exists()


@pytest.mark.parametrize("field,change", [
    ("$.root.readonly", lambda c: c["root"].update(readonly=True)),
    ("$.linux.maskedPaths", lambda c: c["linux"].update(maskedPaths=["/proc/kcore"])),
    ("$.linux.readonlyPaths", lambda c: c["linux"].update(readonlyPaths=["/proc/sys"])),
    ("$.linux.rootfsPropagation", lambda c: c["linux"].update(rootfsPropagation="rslave")),
    ("$.linux.namespaces[0]", lambda c: c["linux"].update(
        namespaces=[{"type": "user"}], uidMappings=[{"containerID": 0, "hostID": 100000,
                                                      "size": 65536}],
        gidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}])),
])
def test_refuses_what_needs_a_mount_namespace(pyrunc, make_bundle, cid, field, change):
    def config(c):
        _shared(c)
        change(c)
    bundle = make_bundle(["true"], config)
    proc = pyrunc.run("create", "-b", str(bundle), cid)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and field in proc.stderr, proc.stderr
    assert "mount namespace" in proc.stderr
    assert _mount_points_under(bundle / "rootfs") == []
