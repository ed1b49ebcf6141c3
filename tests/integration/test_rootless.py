"""Rootless: an unprivileged user runs a container in a user namespace (no cgroups)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import uuid

import pytest

from bundles.busybox import cached_rootfs
from ociruntime.config.defaults import default_spec

pytestmark = pytest.mark.privileged

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USER = "pyrunc-rootless"
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], check=True)
        return pwd.getpwnam(USER)


def test_rootless_run_as_unprivileged_user(user, tmp_path):
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.fail(f"{SYSTEM_PYTHON} is needed to run pyrunc as {USER}")
    work = tmp_path / "rootless"
    work.mkdir()
    shutil.copytree(cached_rootfs(), work / "rootfs", symlinks=True)
    config = default_spec(rootless=True, terminal=False)
    config["process"]["args"] = ["sh", "-c", "id -u; cat /proc/self/uid_map; hostname; "
                                 "touch /tmp/x 2>/dev/null || echo ro; grep CapEff "
                                 "/proc/self/status"]
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": user.pw_uid, "size": 1}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": user.pw_gid, "size": 1}]
    (work / "config.json").write_text(json.dumps(config))
    launcher = work / "pyrunc-launch.py"
    launcher.write_text(f"import sys\nsys.path.insert(0, {REPO!r})\n"
                        "from ociruntime.cli import main\nmain()\n")
    subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(work)], check=True)
    path = tmp_path
    while str(path) != "/":
        os.chmod(path, os.stat(path).st_mode | 0o011)
        path = path.parent
    cid = f"rl{uuid.uuid4().hex[:6]}"
    state_root = work / "state"
    cmd = (f"{SYSTEM_PYTHON} -I -S {launcher} --root {state_root} run -b {work} {cid}")
    proc = subprocess.run(["su", USER, "-s", "/bin/sh", "-c", cmd], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(user.pw_uid), "1"]
    assert lines[2] == "pyrunc"
    assert lines[3] == "ro"
    assert list(state_root.iterdir()) == [], "run deletes its container"
