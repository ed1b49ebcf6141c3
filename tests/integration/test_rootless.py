"""Rootless: an unprivileged user, created for these tests with its own /etc/subuid and
/etc/subgid ranges, runs containers in a user namespace (no cgroups), under pyrunc and runc."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bundles.busybox import cached_rootfs
from tests.integration.conftest import _selected

pytestmark = pytest.mark.privileged

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSTEM_PYTHON = "/usr/bin/python3"
SUB_COUNT = 65536
CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"]


class RootlessUser:
    """A throwaway unprivileged user with one subordinate uid range and one gid range."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pw = pwd.getpwnam(name)
        self.uid, self.gid = self.pw.pw_uid, self.pw.pw_gid
        self.subuid = _sub_range("/etc/subuid", name)
        self.subgid = _sub_range("/etc/subgid", name)

    def run(self, command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["su", self.name, "-s", "/bin/sh", "-c", f"cd {cwd} && {command}"],
                              capture_output=True, text=True, timeout=30)


def _sub_range(path: str, name: str) -> int:
    with open(path) as f:
        for line in f:
            owner, start, count = line.strip().split(":")
            if owner == name and int(count) >= SUB_COUNT:
                return int(start)
    raise AssertionError(f"{name} has no range of {SUB_COUNT} ids in {path}")


def _free_start() -> int:
    """A subordinate id start above every range already in /etc/subuid and /etc/subgid."""
    top = 100000
    for path in ("/etc/subuid", "/etc/subgid"):
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    top = max(top, int(parts[1]) + int(parts[2]))
    return top


def _kill_processes_of(uid: int) -> None:
    """Kill what the test user still runs (only processes these tests started as it)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(scope="module")
def user() -> Iterator[RootlessUser]:
    for tool in ("useradd", "userdel", "usermod", "newuidmap", "newgidmap", "su"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed for the rootless tests (Debian: passwd, uidmap)")
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.fail(f"{SYSTEM_PYTHON} is needed to run pyrunc as an unprivileged user")
    name = f"pyrl{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True)
    try:
        with open("/etc/subuid") as f:
            has_range = any(line.startswith(f"{name}:") for line in f)
        if not has_range:  # useradd adds ranges only when login.defs asks for it
            start = _free_start()
            span = f"{start}-{start + SUB_COUNT - 1}"
            subprocess.run(["usermod", "--add-subuids", span, "--add-subgids", span, name],
                           check=True)
        yield RootlessUser(name)
    finally:
        _kill_processes_of(pwd.getpwnam(name).pw_uid)
        subprocess.run(["userdel", name], check=True)
        for path in ("/etc/subuid", "/etc/subgid"):
            with open(path) as f:
                assert not any(line.startswith(f"{name}:") for line in f), f"{name} in {path}"


def _runtime_cmd(name: str, work: Path) -> str:
    if name == "runc":
        found = os.environ.get("RUNC") or shutil.which("runc")
        assert found
        return found
    launcher = work / "pyrunc-launch.py"
    launcher.write_text(f"import sys\nsys.path.insert(0, {REPO!r})\n"
                        "from ociruntime.cli import main\nmain()\n")
    return f"{SYSTEM_PYTHON} -I -S {launcher}"


def _open_path_to(path: Path) -> None:
    while str(path) != "/":
        os.chmod(path, os.stat(path).st_mode | 0o011)
        path = path.parent


def _workdir(tmp_path: Path, user: RootlessUser) -> Path:
    work = tmp_path / "rootless"
    work.mkdir()
    shutil.copytree(cached_rootfs(), work / "rootfs", symlinks=True)
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(work)], check=True)
    _open_path_to(tmp_path)
    return work


def _run(user: RootlessUser, rt: str, work: Path, config: dict, name: str = "config.json"
         ) -> subprocess.CompletedProcess[str]:
    bundle = work / name.replace(".json", "")
    bundle.mkdir()
    config = dict(config, root={"path": str(work / "rootfs"),
                                "readonly": config["root"]["readonly"]})
    (bundle / "config.json").write_text(json.dumps(config))
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(bundle)], check=True)
    state = work / "state"
    cid = f"rl{uuid.uuid4().hex[:6]}"
    proc = user.run(f"{_runtime_cmd(rt, work)} --root {state} run -b {bundle} {cid}", work)
    if state.exists():
        assert list(state.iterdir()) == [], f"{rt} run must delete its container"
    return proc


@pytest.mark.parametrize("rt", _selected())
def test_rootless_spec_config_single_mapping(user, rt, tmp_path):
    """The caller's own ids only: written directly, setgroups denied, no cgroups."""
    work = _workdir(tmp_path, user)
    made = user.run(f"{_runtime_cmd(rt, work)} spec --rootless", work)
    assert made.returncode == 0, made.stderr
    config = json.loads((work / "config.json").read_text())
    assert config["linux"]["uidMappings"] == [{"containerID": 0, "hostID": user.uid, "size": 1}]
    assert config["linux"]["gidMappings"] == [{"containerID": 0, "hostID": user.gid, "size": 1}]
    assert {"type": "network"} not in config["linux"]["namespaces"]
    assert "resources" not in config["linux"]
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/setgroups;"
                                 " touch /x 2>/dev/null || echo ro; grep CapEff /proc/self/status"]
    proc = _run(user, rt, work, config, "one.json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(user.uid), "1"]
    assert lines[2:4] == ["deny", "ro"]
    assert int(lines[4].split()[1], 16) == (1 << 29) | (1 << 5) | (1 << 10)

    # supplementary groups cannot be set under setgroups deny: both runtimes refuse
    config["process"]["user"] = {"uid": 0, "gid": 0, "additionalGids": [0]}
    refused = _run(user, rt, work, config, "groups.json")
    assert refused.returncode != 0
    assert "groups" in refused.stderr


@pytest.mark.parametrize("rt", _selected())
def test_rootless_multiple_ranges_through_newuidmap(user, rt, tmp_path):
    """Own id -> 0 plus a subordinate range: newuidmap/newgidmap write the maps; files owned
    by mapped subordinate ids work, as root (with CAP_CHOWN) and as a mapped user."""
    work = _workdir(tmp_path, user)
    owned = work / "rootfs" / "owned"
    owned.write_text("secret\n")
    os.chown(owned, user.subuid + 999, user.subgid + 999)  # container 1000:1000
    os.chmod(owned, 0o600)
    os.chmod(work / "rootfs" / "tmp", 0o1777)
    config = json.loads(json.dumps(_base_config(user)))
    config["process"]["args"] = [
        "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u; "
        "stat -c %u:%g /owned; cat /owned; touch /tmp/f; chown 1001:1001 /tmp/f; "
        "stat -c %u:%g /tmp/f"]
    proc = _run(user, rt, work, config, "root.json")
    assert proc.returncode == 0, proc.stderr
    lines = [" ".join(line.split()) for line in proc.stdout.splitlines()]
    maps = [f"0 {user.uid} 1", f"1 {user.subuid} {SUB_COUNT}",
            f"0 {user.gid} 1", f"1 {user.subgid} {SUB_COUNT}"]
    assert lines[:4] == maps, "both ranges in uid_map and gid_map"
    assert lines[4:9] == ["allow", "0", "1000:1000", "secret", "1001:1001"]
    made = os.stat(work / "rootfs" / "tmp" / "f")
    assert (made.st_uid, made.st_gid) == (user.subuid + 1000, user.subgid + 1000)

    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    config["process"]["args"] = ["sh", "-c", "id -u; id -g; cat /owned; touch /tmp/by1000; "
                                 "grep CapEff /proc/self/status"]
    proc = _run(user, rt, work, config, "user.json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:3] == ["1000", "1000", "secret"], "the file's owner reads it, no caps needed"
    assert int(lines[3].split()[1], 16) == 0, "a non-root user keeps no effective caps"
    assert os.stat(work / "rootfs" / "tmp" / "by1000").st_uid == user.subuid + 999


def test_rootless_beside_a_root_container(user, pyrunc, make_bundle, cid, tmp_path):
    """A root container keeps pyrunc's shared /pyrunc cgroup parents; a rootless create
    records them in its plan, cannot use them, and must neither fail on removing them nor
    touch the root container's cgroups."""
    pyrunc.run("run", "-d", "-b", str(make_bundle(["sleep", "30"])), cid, check=True)
    cgroups = pyrunc.state(cid)  # its cgroup dirs live under /pyrunc in every hierarchy
    work = _workdir(tmp_path, user)
    made = user.run(f"{_runtime_cmd('pyrunc', work)} spec --rootless", work)
    assert made.returncode == 0, made.stderr
    config = json.loads((work / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["id", "-u"]
    proc = _run(user, "pyrunc", work, config)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"
    assert pyrunc.state(cid)["status"] == "running", cgroups


def test_rootless_additional_gids_with_newgidmap(user, tmp_path):
    """With newgidmap setgroups stays allowed, so pyrunc sets additionalGids (and drops the
    host user's own groups). runc 1.1.5 refuses any additionalGids when rootless."""
    work = _workdir(tmp_path, user)
    config = _base_config(user)
    config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [1002, 5]}
    config["process"]["args"] = ["id", "-G"]
    proc = _run(user, "pyrunc", work, config, "groups.json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split()) == ["1000", "1002", "5"]


def _base_config(user: RootlessUser) -> dict:
    from ociruntime.config.defaults import default_spec

    config = default_spec(rootless=True, terminal=False)
    config["root"]["readonly"] = False
    maps = {"uid": (user.uid, user.subuid), "gid": (user.gid, user.subgid)}
    for kind, (own, sub) in maps.items():
        config["linux"][f"{kind}Mappings"] = [
            {"containerID": 0, "hostID": own, "size": 1},
            {"containerID": 1, "hostID": sub, "size": SUB_COUNT}]
    config["process"]["capabilities"] = {k: list(CAPS) for k in
                                         ("bounding", "effective", "permitted")}
    return config


def _delegate(user: RootlessUser, name: str) -> list[Path]:
    """A cgroup `name` in every hierarchy, owned by the user (as systemd delegates one)."""
    made = []
    for hierarchy in sorted(Path("/sys/fs/cgroup").iterdir()):
        target = hierarchy / name
        target.mkdir()
        made.append(target)
        if hierarchy.name == "cpuset":
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (target / knob).write_text((hierarchy / knob).read_text())
        subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(target)], check=True)
    return made


def test_rootless_uses_a_delegated_cgroup(user, tmp_path):
    """With a cgroup delegated to the user (and the caller already inside it, as in a systemd
    user session) rootless pyrunc creates the container's cgroups there and applies limits."""
    work = _workdir(tmp_path, user)
    name = f"pyrl-deleg-{uuid.uuid4().hex[:6]}"
    config = _base_config(user)
    config["linux"]["cgroupsPath"] = f"/{name}/c1"
    config["linux"]["resources"] = {"pids": {"limit": 42}}
    config["process"]["args"] = ["sh", "-c", "grep -E '^[0-9]+:(pids|memory):' /proc/self/cgroup; "
                                 f"cat /sys/fs/cgroup/pids/{name}/c1/pids.max"]
    made = _delegate(user, name)
    try:
        bundle = work / "deleg"
        bundle.mkdir()
        config["root"] = {"path": str(work / "rootfs"), "readonly": False}
        (bundle / "config.json").write_text(json.dumps(config))
        subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(bundle)], check=True)
        enter = "; ".join(f"echo $$ > {d}/cgroup.procs" for d in made)
        run = (f"cd {work} && {_runtime_cmd('pyrunc', work)} --root {work}/state "
               f"run -b {bundle} c1")
        proc = subprocess.run(["sh", "-c", f"{enter}; exec su {user.name} -s /bin/sh -c '{run}'"],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert sorted(line.split(":", 1)[1] for line in lines[:2]) == \
            [f"memory:/{name}/c1", f"pids:/{name}/c1"]
        assert lines[2] == "42"
        assert not any((d / "c1").exists() for d in made), "run removes the container's cgroups"
    finally:
        _kill_processes_of(user.uid)
        for d in made:
            try:
                (d / "c1").rmdir()
            except FileNotFoundError:
                pass
            d.rmdir()
