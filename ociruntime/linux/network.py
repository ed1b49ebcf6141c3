"""Network setup the runtime does itself: bring up `lo` in a new network namespace."""

from __future__ import annotations

import _socket
import fcntl
import struct

from ociruntime.errors import RuntimeFailure

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def loopback_up() -> None:
    """Set IFF_UP on `lo` (ioctl; no netlink library needed for this)."""
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        try:
            req = fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0))
            flags = struct.unpack("16sH14x", req)[1]
            fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))
        except OSError as e:
            raise RuntimeFailure(f"bring up lo: {e.strerror}") from None
    finally:
        s.close()
