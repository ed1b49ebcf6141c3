"""containerd 1.6 (runc v2 shim, `ctr --runc-binary`) driving pyrunc (or $PYRUNC_CLIENT_RUNTIME)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.clients.conftest import IMAGE_NAME, NAMESPACE, RUNC_ROOT, RUNTIME
from tests.helpers import drive_pty

pytestmark = pytest.mark.privileged


def _cgroup_dirs(name: str) -> list[Path]:
    """Cgroup dirs of ctr's default cgroupsPath /<namespace>/<id>, on every hierarchy."""
    root = Path("/sys/fs/cgroup")
    return [d / NAMESPACE / name for d in root.iterdir() if (d / NAMESPACE / name).is_dir()]


def test_run_rm_output_exit_code_and_only_stdio(containerd, name):
    proc = containerd.run(name, "sh", "-c", "echo hello from ctr; ls /proc/self/fd; exit 3",
                          flags=("--rm",))
    assert proc.returncode == 3, proc.stderr
    lines = proc.stdout.split()
    assert lines[:4] == ["hello", "from", "ctr", "0"]
    assert lines[4:] == ["1", "2", "3"], "only 0-2 (and ls's own fd 3), never the shim's socket"


def test_rm_cleans_up_everything(containerd, name):
    proc = containerd.run(name, "sh", "-c", "cat /proc/self/cgroup | grep -c .",
                          flags=("--rm",))
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 0
    assert name not in containerd("container", "ls", "-q").stdout.split()
    assert name not in containerd("task", "ls").stdout
    assert not (RUNC_ROOT / name).exists(), "the runtime's state dir is gone"
    assert _cgroup_dirs(name) == [], "the container's cgroups are gone"


def test_detached_exec_ps_pause_resume(containerd, name):
    containerd.run(name, "sleep", "300", flags=("-d",), check=True)
    try:
        task = containerd("task", "ls").stdout
        assert name in task and "RUNNING" in task
        exe = containerd("task", "exec", "--exec-id", "e1", name, "sh", "-c",
                         "echo exec-ok; tr \"\\\\0\" \" \" < /proc/1/cmdline; echo; exit 4")
        assert exe.returncode == 4, exe.stderr
        assert exe.stdout == "exec-ok\nsleep 300 \n"
        ps = containerd("task", "ps", name, check=True).stdout.split()
        assert ps[0] == "PID" and len(ps) == 4, ps  # header + one process (the exec is gone)
        init_pid = int(ps[2])
        assert Path(f"/proc/{init_pid}/cmdline").read_bytes() == b"sleep\x00300\x00"
        containerd("task", "pause", name, check=True)
        assert "PAUSED" in containerd("task", "ls").stdout
        state = Path(f"/proc/{init_pid}/status").read_text()
        assert "\nState:\tD" in state or "\nState:\tS" in state  # frozen, not gone
        paused_exec = containerd("task", "exec", "--exec-id", "e2", name, "true", timeout=5)
        assert paused_exec.returncode != 0, "no exec into a paused container"
        containerd("task", "resume", name, check=True)
        assert "RUNNING" in containerd("task", "ls").stdout
        again = containerd("task", "exec", "--exec-id", "e3", name, "echo", "after-resume")
        assert again.stdout == "after-resume\n", again.stderr
    finally:
        containerd.cleanup(name)


def test_task_metrics(containerd, name):
    containerd.run(name, "sh", "-c", "head -c 8m /dev/zero > /dev/shm/x; sleep 300",
                   flags=("-d", "--memory-limit", str(64 << 20)), check=True)
    try:
        time.sleep(0.5)
        metrics = containerd("task", "metrics", "--format", "json", name)
        assert metrics.returncode == 0, metrics.stderr
        doc = json.loads(metrics.stdout)
        data = doc.get("Data") or doc.get("data") or doc
        text = json.dumps(data)
        assert str(64 << 20) in text, "the memory limit is reported"
        assert "pids" in text.lower() and "cpu" in text.lower()
        table = containerd("task", "metrics", name, check=True).stdout
        assert "memory.usage_in_bytes" in table or "memory" in table
    finally:
        containerd.cleanup(name)


def test_sigterm_exit_status(containerd, name):
    containerd.run(name, "sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.1; done",
                   flags=("-d",), check=True)
    try:
        time.sleep(0.5)
        containerd("task", "kill", name, check=True)
        assert "STOPPED" in containerd.wait_stopped(name)
        deleted = containerd("task", "delete", name)
        assert "exit code 42" in deleted.stderr + deleted.stdout, deleted
    finally:
        containerd.cleanup(name)


def test_sigkill_exit_status_and_kill_errors(containerd, name):
    containerd.run(name, "sleep", "300", flags=("-d",), check=True)
    try:
        containerd("task", "kill", "-s", "SIGKILL", name, check=True)
        assert "STOPPED" in containerd.wait_stopped(name)
        again = containerd("task", "kill", "-s", "SIGKILL", name)
        # the shim turns the runtime's "container not running" into "process already finished"
        assert again.returncode != 0 and "already finished" in again.stderr, again.stderr
        deleted = containerd("task", "delete", name)
        assert "exit code 137" in deleted.stderr + deleted.stdout, deleted
    finally:
        containerd.cleanup(name)


def test_task_delete_force_kills_everything(containerd, name):
    """`ctr task delete --force` makes the shim call `kill --all ID 9` then `delete --force`."""
    containerd.run(name, "sh", "-c", "sleep 300 & sleep 300 & wait", flags=("-d",), check=True)
    try:
        pids = [int(p) for p in containerd("task", "ps", name, check=True).stdout.split()[2::2]]
        assert len(pids) == 3, pids
        deleted = containerd("task", "delete", "--force", name)
        assert deleted.returncode == 0, deleted.stderr
        assert name not in containerd("task", "ls").stdout
        for pid in pids:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except FileNotFoundError:
                continue
            assert stat.split(") ")[1][0] in "ZX", f"{pid} still alive"
        assert not (RUNC_ROOT / name).exists()
    finally:
        containerd.cleanup(name)


def test_run_t(containerd, name):
    out, code = drive_pty(containerd.argv("run", "-t", "--rm", "--runc-binary", RUNTIME,
                                          IMAGE_NAME, name, "sh", "-c",
                                          "tty; echo ready; read x; echo got:$x; exit 6"),
                          b"typed\r")
    assert code == 6, out
    assert b"/dev/pts/0" in out and b"got:typed" in out


def test_task_exec_t(containerd, name):
    containerd.run(name, "sleep", "300", flags=("-d",), check=True)
    try:
        out, code = drive_pty(containerd.argv("task", "exec", "-t", "--exec-id", "t1", name,
                                              "sh", "-c", "tty; echo ready; read x; echo got:$x; "
                                              # ctr resizes once the exec has started
                                              "for i in $(seq 50); do s=$(stty size); "
                                              "[ \"$s\" = '33 99' ] && break; sleep 0.1; "
                                              "done; echo size:$s; exit 5"),
                              b"abc\r", rows=33, cols=99)
        assert code == 5, out
        assert b"/dev/pts/" in out and b"got:abc" in out
        assert b"size:33 99" in out, "the exec's pty has the caller's size"
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
    assert not (ro / "g").exists()


def test_memory_limit(containerd, name):
    limit = 32 << 20
    # within the limit: fine; well past it (tmpfs pages are charged to the cgroup): OOM-killed
    ok = containerd.run(name, "sh", "-c", "head -c 8m /dev/zero > /dev/shm/a && echo fits",
                        flags=("--rm", "--memory-limit", str(limit)))
    assert ok.returncode == 0 and ok.stdout == "fits\n", ok.stderr
    big = containerd.run(name + "b", "sh", "-c",
                         "x=$(head -c 100m /dev/zero | tr '\\0' a); echo survived",
                         flags=("--rm", "--memory-limit", str(limit)))
    assert big.returncode == 137 and "survived" not in big.stdout, (big.returncode, big.stdout)


def test_hostname_namespace(containerd, name):
    host_name = os.uname().nodename
    host_uts = os.readlink("/proc/self/ns/uts")
    proc = containerd.run(name, "sh", "-c",
                          "readlink /proc/self/ns/uts; hostname in-ctr && hostname",
                          flags=("--rm", "--cap-add", "CAP_SYS_ADMIN"))
    assert proc.returncode == 0, proc.stderr
    uts, inside = proc.stdout.split()
    assert uts != host_uts and inside == "in-ctr"
    assert os.uname().nodename == host_name, "the host's name is untouched"


def test_twenty_containers(containerd):
    names = [f"many{i}-{os.getpid()}" for i in range(20)]
    for n in names:
        proc = containerd.run(n, "echo", n, flags=("--rm",))
        assert proc.returncode == 0 and proc.stdout == f"{n}\n", proc.stderr
    listed = containerd("container", "ls", "-q").stdout.split()
    assert not set(names) & set(listed)
    assert not [n for n in names if (RUNC_ROOT / n).exists()]


def test_bad_command_error_reaches_ctr(containerd, name):
    proc = containerd.run(name, "/no/such/command", flags=("--rm",))
    assert proc.returncode != 0
    # the shim reads the runtime's last {"level":"error"} line from <bundle>/log.json
    err = proc.stderr.lower()
    assert "oci runtime create failed" in err and "/no/such/command" in err, proc.stderr
    assert "no such file or directory" in err, proc.stderr
    containerd("container", "delete", name)
    assert not (RUNC_ROOT / name).exists()
