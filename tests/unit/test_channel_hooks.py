"""The parent<->container channel, and the hook runner."""

from __future__ import annotations

import json
import os

import pytest

from ociruntime.errors import RuntimeFailure
from ociruntime.hooks import run_hook, state_for_hooks
from ociruntime.process import channel as ch
from ociruntime.process.channel import Channel


def test_messages_round_trip_and_errors_raise():
    a, b = Channel.pair()
    try:
        a.send(ch.INIT_PID, pid=42)
        assert b.expect(ch.INIT_PID)["pid"] == 42
        a.send_error("mount /proc: permission denied")
        with pytest.raises(RuntimeFailure, match="mount /proc: permission denied"):
            b.recv()
        a.send(ch.READY)
        with pytest.raises(RuntimeFailure, match="protocol error"):
            b.expect(ch.GO)
        a.close()
        with pytest.raises(RuntimeFailure, match="exited unexpectedly"):
            b.recv(1)
    finally:
        b.close()


def test_send_to_a_gone_peer_raises_the_error_it_left():
    a, b = Channel.pair()
    b.send_error("mount /proc: permission denied")
    b.close()
    try:
        with pytest.raises(RuntimeFailure, match="mount /proc: permission denied"):
            a.send(ch.GO, pid=1)
    finally:
        a.close()


def test_send_to_a_silently_gone_peer_and_send_error_never_raises():
    a, b = Channel.pair()
    b.close()
    try:
        with pytest.raises(RuntimeFailure, match="exited unexpectedly"):
            a.send(ch.GO, pid=1)
        a.send_error("nobody listens")  # must not raise: the container side exits after it
    finally:
        a.close()


def test_peer_gone_with_our_message_unread_still_delivers_its_error():
    """An init that fails before reading GO leaves GO unread; the kernel then reports
    ECONNRESET ahead of the error it sent. recv must still return that error."""
    parent, child = Channel.pair()
    parent.send(ch.GO, pid=1)  # never read by the child
    child.send_error("mount /v/d/m3: no such file or directory")
    child.sock.close()
    with pytest.raises(RuntimeFailure, match="mount /v/d/m3"):
        parent.recv(1.0)
    with pytest.raises(RuntimeFailure, match="exited unexpectedly"):
        parent.recv(1.0)
    parent.sock.close()


def test_recv_timeout():
    a, b = Channel.pair()
    try:
        with pytest.raises(RuntimeFailure, match="did not answer"):
            b.recv(0.05)
    finally:
        a.close()
        b.close()


def test_hook_gets_state_args_and_only_its_env(tmp_path):
    out = tmp_path / "out"
    state = state_for_hooks("c1", "creating", 7, "/b", {"k": "v"}, "1.2.0")
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f'cat > {out}; echo "$X $HOME" >> {out}'],
            "env": ["X=1"]}
    run_hook(hook, state, "prestart", 0)
    body, env_line = out.read_text().rsplit("}", 1)
    doc = json.loads(body + "}")
    assert doc == {"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 7,
                   "bundle": "/b", "annotations": {"k": "v"}}
    assert env_line.strip() == "1", "only the hook's env is passed"


def test_failing_and_slow_hooks(tmp_path):
    with pytest.raises(RuntimeFailure, match=r"poststart\[2\] /bin/sh: exit status 4: oops"):
        run_hook({"path": "/bin/sh", "args": ["sh", "-c", "echo oops; exit 4"]}, b"{}",
                 "poststart", 2)
    with pytest.raises(RuntimeFailure, match="timed out after 1s"):
        run_hook({"path": "/bin/sleep", "args": ["sleep", "20"], "timeout": 1}, b"{}",
                 "prestart", 0)
    with pytest.raises(RuntimeFailure, match="exit status 127"):
        run_hook({"path": str(tmp_path / "missing")}, b"{}", "prestart", 0)
    assert os.path.exists("/bin/sh")
