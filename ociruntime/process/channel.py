"""Typed messages between the runtime (parent) and the container side, over SOCK_SEQPACKET.

Each datagram is one JSON object with a ``type``. An error travels as
``{"type": "error", "msg": ...}``; receiving it raises RuntimeFailure on the other side.
The parent checks that messages arrive in the order the protocol allows (see parent.py).
"""

from __future__ import annotations

import _socket

from ociruntime.errors import RuntimeFailure
from ociruntime.jsonio import dumps, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


MAX_MESSAGE = 1 << 16

# container side -> parent
ASK_IDMAP = "ask-idmap"
INIT_PID = "init-pid"
HOOKS = "hooks"
SECCOMP_FD = "seccomp-fd"
READY = "ready"
ERROR = "error"
# parent -> container side
PREPARED = "prepared"
IDMAP_DONE = "idmap-done"
GO = "go"
HOOKS_DONE = "hooks-done"


class _NoMessage(RuntimeFailure):
    """EOF or a timeout: the peer said nothing (more)."""


class Channel:
    """One end of the parent<->container socketpair."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        a, b = _socket.socketpair(_socket.AF_UNIX,
                                  _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, kind: str, **fields: Any) -> None:
        """Send one message; if the peer is gone, raise the error it left for us."""
        fields["type"] = kind
        try:
            self.sock.send(dumps(fields).encode())
        except (BrokenPipeError, ConnectionResetError):
            self._raise_left_error()

    def _raise_left_error(self) -> None:
        """The peer closed its end: its last words (an error message) may still be queued."""
        try:
            while True:
                self.recv(0.0)  # raises on the peer's error and on EOF
        except BlockingIOError:
            raise _NoMessage("container init exited unexpectedly") from None

    def send_fd(self, kind: str, fd: int, **fields: Any) -> None:
        """Send a message with one fd attached (SCM_RIGHTS)."""
        fields["type"] = kind
        self.sock.sendmsg([dumps(fields).encode()], [
            (_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd.to_bytes(4, "little", signed=True))])

    def send_error(self, message: str) -> None:
        """Tell the peer why we fail; never raises (the peer may be gone already)."""
        fields = {"type": ERROR, "msg": message[:4000]}
        try:
            self.sock.send(dumps(fields).encode())
        except OSError:
            pass

    def recv(self, timeout: float | None = None) -> dict[str, Any]:
        """Next message; raises RuntimeFailure on a peer error, EOF or timeout."""
        self.sock.settimeout(timeout)
        try:
            try:
                raw, ancillary, _, _ = self.sock.recvmsg(MAX_MESSAGE, _socket.CMSG_SPACE(4))
            except ConnectionResetError:
                # The peer exited with a message of ours unread (e.g. an init that failed
                # while mounting, before reading GO): the kernel reports that ahead of the
                # messages the peer sent before it went; they are still queued, read on.
                raw, ancillary, _, _ = self.sock.recvmsg(MAX_MESSAGE, _socket.CMSG_SPACE(4))
        except (TimeoutError, _socket.timeout):
            raise _NoMessage("container init did not answer in time") from None
        if not raw:
            raise _NoMessage("container init exited unexpectedly")
        msg = loads(raw)
        for level, kind, data in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
                msg["fd"] = int.from_bytes(data[:4], "little", signed=True)
        if msg.get("type") == ERROR:
            raise RuntimeFailure(msg.get("msg", "container init failed"))
        return msg

    def left_error(self, timeout: float = 0.2) -> str | None:
        """The error message the peer sent, if one arrives within `timeout`; else None."""
        try:
            self.recv(timeout)
        except _NoMessage:
            return None
        except RuntimeFailure as e:
            return str(e)
        return None

    def expect(self, kind: str, timeout: float | None = None) -> dict[str, Any]:
        """Receive a message and check its type."""
        msg = self.recv(timeout)
        if msg.get("type") != kind:
            raise RuntimeFailure(f"protocol error: expected {kind}, got {msg.get('type')}")
        return msg

    def close(self) -> None:
        self.sock.close()
