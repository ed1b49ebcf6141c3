"""CVE-2019-5736 class, attacked deterministically: while a pyrunc process runs the host's
Python interpreter inside the container's PID namespace (the init between create and start,
the exec'd tenant until its execve), a container process tries to read the link, open and
write /proc/PID/exe. PYRUNC_TEST_PAUSE=tenant holds the tenant at that moment, so the attack
cannot miss its window (test_security.py's watcher covers the unpaused race, both runtimes).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.privileged

ATTACK = ("cat /proc/{pid}/comm; readlink /proc/{pid}/exe || echo link:denied;"
          " cat /proc/{pid}/exe >/dev/null 2>&1 || echo read:denied;"
          " (echo x >> /proc/{pid}/exe) 2>/dev/null || echo write:denied")


def attack(rt, cid: str, pid: int, *exec_flags: str) -> list[str]:
    proc = rt.run("exec", *exec_flags, cid, "sh", "-c", ATTACK.format(pid=pid))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def assert_closed(lines: list[str], comm: str) -> None:
    assert lines == [comm, "link:denied", "read:denied", "write:denied"], \
        "the comm shows the attack reached the runtime's process; the rest must be denied"


@pytest.fixture
def paused_tenant(pyrunc) -> Iterator:
    """paused_tenant(cid, *flags) -> container pid of an exec held before its execve."""
    started: list[subprocess.Popen] = []

    def start(cid: str, *flags: str) -> int:
        cmd = [*pyrunc.argv, "--root", str(pyrunc.root), "exec", *flags, cid, "true"]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYRUNC_TEST_PAUSE="tenant"))
        started.append(proc)
        line = proc.stderr.readline()
        assert "paused at tenant" in line, line
        return int(line.rsplit("pid ", 1)[1].rstrip(")\n"))
    yield start
    pyrunc.delete_all()  # kills the held tenant with the container; its exec then ends
    for proc in started:
        proc.wait(10)
        proc.stderr.close()


@pytest.fixture
def suid_dumpable_1() -> Iterator[None]:
    """fs.suid_dumpable=1 for the test: a uid change then makes a process dumpable again,
    which is what the runtime must undo. Restored right after."""
    path = "/proc/sys/fs/suid_dumpable"
    with open(path) as f:
        old = f.read().strip()
    with open(path, "w") as f:
        f.write("1")
    try:
        yield
    finally:
        with open(path, "w") as f:
            f.write(old)


def _bundle(make_bundle, **process):
    def tweak(c):
        c["process"].update(process)
    return make_bundle(["sleep", "30"], tweak)


def test_exec_tenant_exe_is_closed_to_container_root(pyrunc, make_bundle, cid, paused_tenant):
    pyrunc.run("run", "-d", "-b", str(_bundle(make_bundle)), cid, check=True)
    pid = paused_tenant(cid)
    assert_closed(attack(pyrunc, cid, pid), "pyrunc")


def test_exe_stays_closed_after_the_user_switch(pyrunc, make_bundle, cid, paused_tenant,
                                                suid_dumpable_1):
    """A process of the same uid with no capabilities may ptrace a dumpable one. With
    fs.suid_dumpable=1 the switch to uid 1000 made the runtime's process dumpable again:
    the init (as it waits for start) and the exec'd tenant showed the host interpreter to
    every uid-1000 process of the container until the runtime re-cleared the flag."""
    user = {"uid": 1000, "gid": 1000}
    pyrunc.run("create", "-b", str(_bundle(make_bundle, user=user, capabilities={})), cid,
               check=True)
    assert_closed(attack(pyrunc, cid, 1, "--user", "1000:1000"), "pyrunc-init")
    pyrunc.run("start", cid, check=True)
    pid = paused_tenant(cid, "--user", "1000:1000")
    assert_closed(attack(pyrunc, cid, pid, "--user", "1000:1000"), "pyrunc")
