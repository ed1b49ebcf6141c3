"""Which of the caller's fds reach the container (CVE-2024-21626 class: nothing else may):
systemd socket activation (LISTEN_FDS), --preserve-fds after it, and nothing through exec.
Both runtimes; every expectation is runc 1.1.5's."""

from __future__ import annotations

import os
import subprocess

import pytest

pytestmark = pytest.mark.privileged

SHOW = ("for fd in 3 4 5; do read -r line <&$fd 2>/dev/null && echo \"$fd:$line\"; done; "
        "echo \"env:${LISTEN_FDS:-unset}:${LISTEN_PID:-unset}\"; ls /proc/self/fd | wc -l")


def files(tmp_path, *texts: str) -> list[str]:
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / f"passed{i}"
        path.write_text(text + "\n")
        paths.append(str(path))
    return paths


def run_with_fds(runtime, bundle, cid, opens: list[str], env: str, *flags: str
                 ) -> subprocess.CompletedProcess[str]:
    """`run` from a shell that opened `opens` at fds 3.. and exported `env` (with $$ being
    the runtime's pid, as systemd's LISTEN_PID is)."""
    redirects = " ".join(f"exec {3 + i}<{path};" for i, path in enumerate(opens))
    script = f'{redirects} {env} exec "$@"'
    argv = ["sh", "-c", script, "sh", *runtime.argv, "--root", str(runtime.root), "run",
            *flags, "-b", str(bundle), cid]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20,
                          stdin=subprocess.DEVNULL)


def test_listen_fds_come_first_then_preserved(runtime, make_bundle, cid, tmp_path):
    bundle = make_bundle(["sh", "-c", SHOW])
    proc = run_with_fds(runtime, bundle, cid, files(tmp_path, "socket", "preserved"),
                        "LISTEN_FDS=1 LISTEN_PID=$$", "--preserve-fds", "1")
    assert proc.returncode == 0, proc.stderr
    # fd 3 the activation socket, 4 the preserved one, env says one socket for pid 1; six
    # fds in ls: 0-4 and ls's own directory
    assert proc.stdout.split() == ["3:socket", "4:preserved", "env:1:1", "6"]


def test_listen_fds_for_another_pid_are_not_passed(runtime, make_bundle, cid, tmp_path):
    bundle = make_bundle(["sh", "-c", SHOW])
    proc = run_with_fds(runtime, bundle, cid, files(tmp_path, "socket"),
                        "LISTEN_FDS=1 LISTEN_PID=1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["env:unset:unset", "4"]


def test_exec_gets_no_host_fd(runtime, make_bundle, cid, tmp_path):
    """The caller of exec leaks an inheritable fd (and LISTEN_FDS, which only create/run
    honour): the exec'd process has stdio only, and its cwd is the container's."""
    runtime.run("run", "-d", "-b", str(make_bundle(["sleep", "30"])), cid, check=True)
    leaked = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        proc = runtime.run("exec", cid, "sh", "-c", f"{SHOW}; readlink /proc/self/cwd",
                           pass_fds=(leaked,), env={"LISTEN_FDS": "1", "LISTEN_PID": "0"})
    finally:
        os.close(leaked)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["env:unset:unset", "4", "/"]
