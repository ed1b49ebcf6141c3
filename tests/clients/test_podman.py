"""podman 4.3 + conmon (`podman --runtime pyrunc`, or $PYRUNC_CLIENT_RUNTIME) in a private root."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.clients.conftest import IMAGE_NAME
from tests.helpers import drive_pty

pytestmark = pytest.mark.privileged

TRAP_TERM = "trap 'exit 42' TERM; echo up; while true; do sleep 0.1; done"


def _state_dir(podman, cid: str) -> Path:
    """Where the runtime keeps the container: podman's start/kill/delete pass no --root."""
    root = "/run/runc" if os.path.basename(podman.runtime) == "runc" else "/run/pyrunc"
    return Path(root) / cid


def _detached(podman, name: str, *cmd: str, flags: tuple[str, ...] = ()) -> str:
    cid = podman("run", "-d", "--name", name, *flags, IMAGE_NAME, *cmd, check=True).stdout.strip()
    assert podman.status(name) == "running"
    return cid


def _wait_output(podman, name: str, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in podman("logs", name).stdout:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never printed {text!r}")


def test_run_output_exit_code_stdio_and_rm(podman, name, tmp_path):
    cidfile = tmp_path / "cid"
    proc = podman("run", "--rm", "--cidfile", str(cidfile), "--name", name, IMAGE_NAME,
                  "sh", "-c", "echo out; echo err >&2; ls /proc/self/fd; exit 3")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.split() == ["out", "0", "1", "2", "3"], "only 0-2 (and ls's own fd 3)"
    assert proc.stderr == "err\n"
    cid = cidfile.read_text().strip()
    assert podman("ps", "-aq").stdout.strip() == ""
    assert not _state_dir(podman, cid).exists()


def test_run_stdin_is_devnull_read_write(podman, name):
    """Without -i conmon gives /dev/null as stdin; like runc, the container gets it read-write."""
    proc = podman("run", "--rm", IMAGE_NAME, "sh", "-c",
                  "cat; readlink /proc/self/fd/0; echo into-null >&0 && echo wrote")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "/dev/null\nwrote\n"


def test_run_it(podman, name):
    out, code = drive_pty(podman.pty_argv("run", "-it", "--rm", "--name", name, IMAGE_NAME, "sh",
                                      "-c", "tty; stty size; echo ready; read x; echo got:$x; "
                                      "exit 6"), b"typed\r", rows=31, cols=91)
    assert code == 6, out
    assert b"/dev/pts/0" in out and b"got:typed" in out
    assert b"31 91" in out, out


def test_exec_and_exec_it(podman, name):
    _detached(podman, name, "sleep", "300")
    try:
        exe = podman("exec", name, "sh", "-c", "echo exec-ok; tr '\\0' ' ' < /proc/1/cmdline; "
                     "echo; ls /proc/self/fd; exit 4")
        assert exe.returncode == 4, exe.stderr
        assert exe.stdout.split("\n")[:2] == ["exec-ok", "sleep 300 "]
        assert exe.stdout.split()[3:] == ["0", "1", "2", "3"]
        piped = podman("exec", "-i", name, "sh", "-c", "read x; echo got:$x", input="line\n")
        assert piped.stdout == "got:line\n", piped.stderr
        out, code = drive_pty(podman.pty_argv("exec", "-it", name, "sh", "-c",
                                          "tty; echo ready; read x; echo got:$x; exit 5"),
                              b"abc\r")
        assert code == 5, out
        assert b"/dev/pts/" in out and b"got:abc" in out
        top = podman("top", name, "args", check=True).stdout
        assert "sleep 300" in top
    finally:
        podman("rm", "-f", "-t", "0", name)


def test_pause_unpause(podman, name):
    # the counter is replaced by rename, so a read never sees a half-written file
    _detached(podman, name, "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/t; "
              "mv /tmp/t /tmp/tick; sleep 0.05; done")
    try:
        tick = Path(podman("mount", name, check=True).stdout.strip()) / "tmp" / "tick"
        deadline = time.monotonic() + 10
        while not tick.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        podman("pause", name, check=True)
        assert podman.status(name) == "paused"
        first = tick.read_text()
        time.sleep(0.3)
        assert tick.read_text() == first, "a paused container does not run"
        podman("unpause", name, check=True)
        assert podman.status(name) == "running"
        time.sleep(0.3)
        assert tick.read_text() != first
        podman("umount", name)
    finally:
        podman("rm", "-f", "-t", "0", name)


def test_kill_signals_and_exit_codes(podman, name):
    _detached(podman, name, "sh", "-c", TRAP_TERM)
    try:
        _wait_output(podman, name, "up")
        podman("kill", "-s", "TERM", name, check=True)
        assert podman.exit_code(name) == 42
        again = podman("kill", name)
        assert again.returncode != 0 and "can only kill running" in again.stderr, again.stderr
    finally:
        podman("rm", "-f", "-t", "0", name)
    _detached(podman, name, "sleep", "300")
    try:
        podman("kill", name, check=True)  # SIGKILL by default
        assert podman.exit_code(name) == 137
    finally:
        podman("rm", "-f", "-t", "0", name)


def test_rm_f_running(podman, name):
    cid = _detached(podman, name, "sleep", "300")
    assert _state_dir(podman, cid).is_dir()
    proc = podman("rm", "-f", "-t", "0", name)
    assert proc.returncode == 0, proc.stderr
    assert podman("ps", "-aq").stdout.strip() == ""
    assert not _state_dir(podman, cid).exists()


def test_stop_with_timeout(podman, name):
    # sleep as PID 1 ignores SIGTERM: stop -t 1 falls back to SIGKILL after a second
    _detached(podman, name, "sleep", "300")
    try:
        start = time.monotonic()
        stopped = podman("stop", "-t", "1", name)
        took = time.monotonic() - start
        assert stopped.returncode == 0, stopped.stderr
        assert 0.9 < took < 10, took
        assert podman.status(name) == "exited"
        assert podman.exit_code(name) == 137
    finally:
        podman("rm", "-f", "-t", "0", name)
    # a handler for SIGTERM: stop returns at once with the handler's exit code
    _detached(podman, name, "sh", "-c", TRAP_TERM)
    try:
        _wait_output(podman, name, "up")
        start = time.monotonic()
        podman("stop", "-t", "10", name, check=True)
        assert time.monotonic() - start < 5
        assert podman.exit_code(name) == 42
    finally:
        podman("rm", "-f", "-t", "0", name)


def test_memory_limit(podman, name):
    limit = 32 << 20
    proc = podman("run", "--rm", "--memory", "32m", IMAGE_NAME, "sh", "-c",
                  "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
                  "cat /sys/fs/cgroup/memory.max")
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == limit
    big = podman("run", "--rm", "--memory", "32m", IMAGE_NAME, "sh", "-c",
                 "x=$(head -c 100m /dev/zero | tr '\\0' a); echo survived")
    assert big.returncode == 137 and "survived" not in big.stdout, (big.returncode, big.stdout)


def test_volumes(podman, name, tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "f").write_text("host data\n")
    proc = podman("run", "--rm", "-v", f"{rw}:/rw", "-v", f"{ro}:/ro:ro", IMAGE_NAME, "sh", "-c",
                  "cat /ro/f; echo w > /rw/new; touch /ro/g 2>/dev/null || echo bind-ro")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "host data\nbind-ro\n"
    assert (rw / "new").read_text() == "w\n"
    assert not (ro / "g").exists()


def test_read_only_env_workdir_hostname(podman, name):
    proc = podman("run", "--rm", "--read-only", "-e", "GREET=hi", "-w", "/tmp",
                  "--hostname", "pm-host", IMAGE_NAME, "sh", "-c",
                  "echo $GREET; pwd; hostname; touch /x 2>/dev/null || echo rootfs-ro; "
                  "touch /tmp/ok && echo tmp-rw")
    assert proc.returncode == 0, proc.stderr
    # podman's --read-only keeps a writable tmpfs on /tmp (read_only_tmpfs)
    assert proc.stdout == "hi\n/tmp\npm-host\nrootfs-ro\ntmp-rw\n"


def test_bad_command_error_reaches_podman(podman, name):
    proc = podman("run", "--rm", IMAGE_NAME, "/no/such/command")
    assert proc.returncode == 127, proc.stderr  # podman: "command not found"
    assert "/no/such/command" in proc.stderr and "no such file or directory" in proc.stderr
    denied = podman("run", "--rm", IMAGE_NAME, "/etc/passwd")
    assert denied.returncode == 126, denied.stderr  # podman: "permission denied"
    assert podman("ps", "-aq").stdout.strip() == ""


@pytest.mark.parametrize("flags, command, expect", [
    ((), "/no/such/command", "/no/such/command"),
    (("-v", "/etc/hostname:/bin"), "true", "/bin"),  # a file onto a directory
])
def test_failure_is_one_json_error_line(podman, name, flags, command, expect):
    """conmon gives `--log-format=json --log oci-log`: one final error line, shown by podman."""
    proc = podman("run", "--name", name, *flags, IMAGE_NAME, command)
    try:
        assert proc.returncode != 0
        cid = podman("inspect", "-f", "{{.Id}}", name, check=True).stdout.strip()
        oci_log = podman.base / "runroot" / "overlay-containers" / cid / "userdata" / "oci-log"
        lines = oci_log.read_text().splitlines()
        errors = [json.loads(line) for line in lines if '"error"' in line]
        assert len(errors) == 1 and json.loads(lines[-1]) == errors[0], lines
        assert expect in errors[0]["msg"]
        assert errors[0]["msg"] in proc.stderr, "podman shows the runtime's message"
    finally:
        podman("rm", "-f", name)
