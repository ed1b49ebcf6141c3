"""exec into running containers, terminals and the console socket."""

from __future__ import annotations

import array
import json
import os
import select
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import drive_pty

pytestmark = pytest.mark.privileged

SLEEPER = ["sleep", "300"]


def started(runtime, make_bundle, cid, args=SLEEPER, overrides=None) -> int:
    runtime.run("run", "-d", "-b", str(make_bundle(args, overrides)), cid, check=True)
    return runtime.state(cid)["pid"]


def test_exec_output_and_exit_code(runtime, make_bundle, cid):
    started(runtime, make_bundle, cid)
    proc = runtime.run("exec", cid, "sh", "-c", "echo from exec; exit 5")
    assert proc.returncode == 5
    assert proc.stdout == "from exec\n"


def test_exec_shares_namespaces_and_cgroup(runtime, make_bundle, cid):
    init = started(runtime, make_bundle, cid)
    out = runtime.run("exec", cid, "sh", "-c",
                      "for n in pid mnt net ipc uts; do readlink /proc/self/ns/$n; done; "
                      "cat /proc/self/cgroup", check=True).stdout.splitlines()
    for line, ns in zip(out[:5], ["pid", "mnt", "net", "ipc", "uts"], strict=True):
        assert line == os.readlink(f"/proc/{init}/ns/{ns}")
    with open(f"/proc/{init}/cgroup") as f:
        assert sorted(out[5:]) == sorted(f.read().splitlines())


def test_exec_with_flags(runtime, make_bundle, cid):
    started(runtime, make_bundle, cid)
    out = runtime.run("exec", "--user", "1000:1000", "--env", "FOO=bar", "--cwd", "/tmp",
                      cid, "sh", "-c", "id -u; id -g; echo $FOO; pwd", check=True).stdout
    assert out.split() == ["1000", "1000", "bar", "/tmp"]


def test_exec_process_json(runtime, make_bundle, cid, tmp_path):
    started(runtime, make_bundle, cid)
    process = {"terminal": False, "user": {"uid": 0, "gid": 0}, "cwd": "/",
               "args": ["sh", "-c", "echo $MARK; exit 3"], "env": ["MARK=from-json",
                                                                "PATH=/bin:/usr/bin"]}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    proc = runtime.run("exec", "--process", str(path), cid)
    assert proc.returncode == 3
    assert proc.stdout == "from-json\n"


def test_exec_detached_pid_file(runtime, make_bundle, cid, tmp_path):
    started(runtime, make_bundle, cid)
    pid_file = tmp_path / "exec.pid"
    runtime.run("exec", "-d", "--pid-file", str(pid_file), cid, "sleep", "100", check=True)
    pid = int(pid_file.read_text())
    pids = json.loads(runtime.run("ps", "-f", "json", cid, check=True).stdout)
    assert pid in pids


def test_exec_into_paused_is_refused(runtime, make_bundle, cid):
    started(runtime, make_bundle, cid)
    runtime.run("pause", cid, check=True)
    try:
        proc = runtime.run("exec", cid, "true")
        assert proc.returncode != 0
        assert "paused" in proc.stderr
    finally:
        runtime.run("resume", cid, check=True)


def test_exec_into_stopped_or_unknown(runtime, make_bundle, cid):
    runtime.run("run", "-d", "-b", str(make_bundle(["true"])), cid, check=True)
    time.sleep(0.2)
    stopped = runtime.run("exec", cid, "true")
    assert stopped.returncode != 0
    unknown = runtime.run("exec", "no-such-container", "true")
    assert unknown.returncode != 0
    assert "does not exist" in unknown.stderr


def test_exec_missing_binary(runtime, make_bundle, cid):
    started(runtime, make_bundle, cid)
    proc = runtime.run("exec", cid, "no-such-binary")
    assert proc.returncode == 255
    assert "executable file not found" in proc.stderr


def test_many_concurrent_execs(runtime, make_bundle, cid):
    started(runtime, make_bundle, cid)

    def one(i: int) -> str:
        return runtime.run("exec", cid, "echo", f"n{i}", check=True).stdout

    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(one, range(16)))
    assert outs == [f"n{i}\n" for i in range(16)]


class ConsoleSocket:
    """A unix socket that receives a pty master like containerd's go-runc."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.master: int | None = None
        self.payload = b""
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        conn, _ = self.sock.accept()
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        self.payload = msg
        self.master = fds[0]
        conn.close()

    def read_until(self, needle: bytes, timeout: float = 10) -> bytes:
        self.thread.join(timeout)
        assert self.master is not None, "no pty master received"
        out = b""
        deadline = time.monotonic() + timeout
        while needle not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    out += os.read(self.master, 4096)
                except OSError:
                    break
        return out

    def close(self) -> None:
        if self.master is not None:
            os.close(self.master)
        self.sock.close()


def test_create_with_console_socket(runtime, make_bundle, cid, tmp_path):
    console = ConsoleSocket(str(tmp_path / "console.sock"))
    try:
        def tty(c):
            c["process"]["consoleSize"] = {"height": 33, "width": 101}
        bundle = make_bundle(["sh", "-c", "tty; stty size; read line; echo got:$line; "
                              "sleep 5"], tty, terminal=True)
        runtime.run("create", "--console-socket", console.path, "-b", str(bundle), cid,
                    check=True)
        runtime.run("start", cid, check=True)
        out = console.read_until(b"33 101")
        assert b"/dev/pts/0" in out and b"33 101" in out
        os.write(console.master, b"typed\n")
        assert b"got:typed" in console.read_until(b"got:typed")
    finally:
        console.close()


def test_exec_tty_with_console_socket(runtime, make_bundle, cid, tmp_path):
    started(runtime, make_bundle, cid)
    console = ConsoleSocket(str(tmp_path / "console.sock"))
    try:
        runtime.run("exec", "-t", "-d", "--console-socket", console.path, cid, "sh", "-c",
                    "tty; echo [$TERM]; read x; echo back:$x", check=True)
        assert b"/dev/pts/" in console.read_until(b"/dev/pts/")
        os.write(console.master, b"hello\n")
        assert b"back:hello" in console.read_until(b"back:hello")
    finally:
        console.close()


def test_run_t_from_a_terminal(pyrunc, make_bundle, cid):
    bundle = make_bundle(["sh", "-c", "stty size; echo ready; read x; echo got:$x; exit 6"],
                         terminal=True)
    out, code = drive_pty([*pyrunc.argv, "--root", str(pyrunc.root), "run", "-b",
                            str(bundle), cid], b"abc\r")
    assert code == 6
    assert b"40 120" in out and b"got:abc" in out


def test_exec_t_from_a_terminal(pyrunc, make_bundle, cid):
    started(pyrunc, make_bundle, cid)
    out, code = drive_pty([*pyrunc.argv, "--root", str(pyrunc.root), "exec", "-t", cid, "sh",
                            "-c", "tty; echo ready; read x; echo got:$x; exit 4"], b"xyz\r")
    assert code == 4
    assert b"/dev/pts/" in out and b"got:xyz" in out


def test_bad_console_socket_leaves_nothing(runtime, make_bundle, cid, tmp_path):
    bundle = make_bundle(["true"], terminal=True)
    proc = runtime.run("create", "--console-socket", str(tmp_path / "missing.sock"), "-b",
                       str(bundle), cid)
    assert proc.returncode == 1
    assert cid not in runtime.ids()


def test_exec_cannot_reach_host_through_proc_exe(pyrunc, make_bundle, cid):
    """CVE-2019-5736 class: the exec'd process must not open the runtime's interpreter."""
    init = started(pyrunc, make_bundle, cid)
    del init
    script = ("for p in /proc/[0-9]*; do [ $p = /proc/self ] && continue; "
              "(exec 3>>$p/exe) 2>/dev/null && echo WRITABLE $p; done; echo done")
    out = pyrunc.run("exec", cid, "sh", "-c", script, check=True).stdout
    assert "WRITABLE" not in out
    assert subprocess.run(["true"]).returncode == 0
