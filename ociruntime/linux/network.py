"""Network setup the runtime does itself: bring up `lo` in a new network namespace."""

from __future__ import annotations

import fcntl
import socket
import struct

from ociruntime.errors import RuntimeFailure

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def loopback_up() -> None:
    """Set IFF_UP on `lo` (ioctl; no netlink library needed for this)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        try:
            req = fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0))
            flags = struct.unpack("16sH14x", req)[1]
            fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))
        except OSError as e:
            raise RuntimeFailure(f"bring up lo: {e.strerror}") from None
