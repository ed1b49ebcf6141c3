"""containerd 1.6 (runc v2 shim, `ctr --runc-binary`) driving pyrunc."""

from __future__ import annotations

import os
import time

import pytest

from tests.clients.conftest import PYRUNC
from tests.helpers import drive_pty

pytestmark = pytest.mark.privileged


def test_run_rm_output_exit_code_and_only_stdio(containerd, name):
    proc = containerd.run(name, "sh", "-c", "echo hello from ctr; ls /proc/self/fd; exit 3",
                          flags=("--rm",))
    assert proc.returncode == 3, proc.stderr
    lines = proc.stdout.split()
    assert lines[:4] == ["hello", "from", "ctr", "0"]
    assert lines[4:] == ["1", "2", "3"], "only 0-2 (and ls's own fd 3), never the shim's socket"
    assert name not in containerd("container", "ls", "-q").stdout


def test_detached_exec_ps_pause_metrics_kill(containerd, name):
    containerd.run(name, "sleep", "300", flags=("-d",), check=True)
    try:
        task = containerd("task", "ls").stdout
        assert name in task and "RUNNING" in task
        exe = containerd("task", "exec", "--exec-id", "e1", name, "sh", "-c",
                         "echo exec-ok; exit 4")
        assert exe.returncode == 4 and exe.stdout == "exec-ok\n"
        ps = containerd("task", "ps", name, check=True).stdout.split()
        assert ps[0] == "PID" and len(ps) >= 3
        containerd("task", "pause", name, check=True)
        assert "PAUSED" in containerd("task", "ls").stdout
        containerd("task", "resume", name, check=True)
        metrics = containerd("task", "metrics", name)
        assert metrics.returncode == 0 and "memory" in metrics.stdout
        containerd("task", "kill", "-s", "SIGKILL", name, check=True)
        for _ in range(100):
            if "STOPPED" in containerd("task", "ls").stdout:
                break
            time.sleep(0.05)
        assert "STOPPED" in containerd("task", "ls").stdout
    finally:
        containerd.cleanup(name)


def test_sigterm_exit_status(containerd, name):
    containerd.run(name, "sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.1; done",
                   flags=("-d",), check=True)
    try:
        time.sleep(0.5)
        containerd("task", "kill", name, check=True)
        for _ in range(100):
            if "STOPPED" in containerd("task", "ls").stdout:
                break
            time.sleep(0.05)
        info = containerd("task", "ls").stdout
        assert "STOPPED" in info
        deleted = containerd("task", "delete", name)
        assert "exit code 42" in deleted.stderr + deleted.stdout, deleted
    finally:
        containerd.cleanup(name)


def test_run_t(containerd, name):
    out, code = drive_pty(["ctr", "--address", containerd.address, "-n", "pyrunc-test", "run", "-t",
                        "--rm", "--runc-binary", PYRUNC,
                        "localhost/pyrunc/busybox:latest", name, "sh", "-c",
                        "tty; echo ready; read x; echo got:$x; exit 6"], b"typed\r")
    assert code == 6
    assert b"/dev/pts/0" in out and b"got:typed" in out


def test_task_exec_t(containerd, name):
    containerd.run(name, "sleep", "300", flags=("-d",), check=True)
    try:
        out, code = drive_pty(["ctr", "--address", containerd.address, "-n", "pyrunc-test", "task",
                            "exec", "-t", "--exec-id", "t1", name, "sh", "-c",
                            "tty; echo ready; read x; echo got:$x; exit 5"], b"abc\r")
        assert code == 5
        assert b"/dev/pts/" in out and b"got:abc" in out
    finally:
        containerd.cleanup(name)


def test_read_only_env_cwd_and_binds(containerd, name, tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "f").write_text("host data\n")
    proc = containerd.run(name, "sh", "-c",
                          "echo $GREET; pwd; touch /x 2>/dev/null || echo rootfs-ro; cat /ro/f; "
                          "echo w > /rw/new; touch /ro/g 2>/dev/null || echo bind-ro",
                          flags=("--rm", "--read-only", "--env", "GREET=hi", "--cwd", "/tmp",
                                 "--mount", f"type=bind,src={rw},dst=/rw,options=rbind:rw",
                                 "--mount", f"type=bind,src={ro},dst=/ro,options=rbind:ro"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:6] == ["hi", "/tmp", "rootfs-ro", "host data", "bind-ro", ""]
    assert (rw / "new").read_text() == "w\n"


def test_twenty_containers(containerd):
    names = [f"many{i}-{os.getpid()}" for i in range(20)]
    for n in names:
        assert containerd.run(n, "true", flags=("--rm",)).returncode == 0
    listed = containerd("container", "ls", "-q").stdout.split()
    assert not set(names) & set(listed)


def test_bad_command_error_reaches_ctr(containerd, name):
    proc = containerd.run(name, "/no/such/command", flags=("--rm",))
    assert proc.returncode != 0
    assert "no such file or directory" in proc.stderr.lower()
    containerd("container", "delete", name)
