"""Terminals: a pty created inside the container, its master sent over --console-socket."""

from __future__ import annotations

import array  # noqa: F401 - socket.send_fds imports it lazily, after pivot_root
import fcntl
import os
import socket
import struct
import termios

from ociruntime.errors import RuntimeFailure
from ociruntime.linux import syscalls as sc

_TIOCGPTN = 0x80045430
_TIOCSPTLCK = 0x40045431
MASTER_NAME = b"/dev/ptmx"


def connect_console_socket(path: str) -> socket.socket:
    """Connect to the caller's unix socket (done on the host, before any namespace change)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise RuntimeFailure(f"connect to console socket {path}: {e.strerror}") from None
    return sock


def open_pty() -> tuple[int, str, int]:
    """Open /dev/ptmx of the container's devpts; return (master, slave path, slave)."""
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeFailure(f"open /dev/ptmx: {e.strerror}") from None
    fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, _TIOCGPTN, struct.pack("I", 0)))[0]
    slave_path = f"/dev/pts/{number}"
    slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    return master, slave_path, slave


def set_size(fd: int, size: dict[str, int] | None) -> None:
    """Apply process.consoleSize (height x width) to the terminal."""
    if size:
        winsize = struct.pack("HHHH", int(size.get("height", 0)), int(size.get("width", 0)), 0, 0)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, winsize)


def setup_console(sock: socket.socket, size: dict[str, int] | None, mount_console: bool,
                  uid: int, gid: int) -> None:
    """Create the pty, send its master over `sock`, make the slave our stdio and ctty."""
    master, slave_path, slave = open_pty()
    try:
        set_size(slave, size)
        os.fchown(slave, uid, gid)
        if mount_console:
            _bind_console(slave_path)
        socket.send_fds(sock, [MASTER_NAME], [master])
    finally:
        os.close(master)
        sock.close()
    for target in (0, 1, 2):
        os.dup2(slave, target)
    os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _bind_console(slave_path: str) -> None:
    try:
        fd = os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.close(fd)
    except FileExistsError:
        pass
    sc.mount(slave_path, "/dev/console", None, sc.MS_BIND, None)


def terminal_size_of_stdin() -> dict[str, int] | None:
    """{height, width} of our stdin when it is a terminal (to size a proxied pty)."""
    if not os.isatty(0):
        return None
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return {"height": rows, "width": cols}


def console_endpoints(path: str | None) -> tuple[socket.socket, socket.socket | None]:
    """(end the container side sends the master on, our end to receive it or None).

    With --console-socket the caller receives the master; without, pyrunc keeps it and
    proxies the terminal itself (`run -t`/`exec -t` at a shell).
    """
    if path:
        return connect_console_socket(path), None
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    return theirs, ours


def receive_master(sock: socket.socket) -> int:
    """The pty master fd the container side sent over our end of the socketpair."""
    _, fds, _, _ = socket.recv_fds(sock, 64, 1)
    sock.close()
    if not fds:
        raise RuntimeFailure("the container did not send a terminal")
    os.set_inheritable(fds[0], False)
    return fds[0]
