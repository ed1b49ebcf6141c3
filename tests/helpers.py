"""Helpers shared by several test modules."""

from __future__ import annotations

import os
import pty
import select
import struct
import termios
import time
from collections.abc import Callable


def json_paths(doc: object, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys/indexes) into a JSON document, the root included."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += json_paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += json_paths(v, prefix + (i,))
    return out


def drive_pty(argv: list[str], send: bytes, rows: int = 40, cols: int = 120,
              timeout: float = 30) -> tuple[bytes, int]:
    """Run argv on a fresh pty of rows x cols; type `send` once it printed `ready`.

    Returns everything it printed and its exit code.
    """
    pid, fd = pty.fork()
    if pid == 0:
        import fcntl

        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.execvp(argv[0], argv)
    out, sent = b"", False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        if not sent and b"ready" in out:
            os.write(fd, send)
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out, os.waitstatus_to_exitcode(status)


def set_at(doc: object, path: tuple, value: object) -> bool:
    """Put `value` at `path` inside `doc`; False when an earlier change made the path stale."""
    node = doc
    try:
        for part in path[:-1]:
            node = node[part]  # type: ignore[index]
        node[path[-1]] = value  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return False
    return True


def in_child(fn: Callable[[], object], fork: Callable[[], int] = os.fork) -> str:
    """Run `fn` in a child made by `fork` (os.fork: then it has one thread); its result as
    text, or "error <type> <message>"."""
    read_end, write_end = os.pipe()
    pid = fork()
    if pid == 0:
        os.close(read_end)
        try:
            os.write(write_end, str(fn()).encode())
            os._exit(0)
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            os.write(write_end, f"error {type(e).__name__} {e}".encode())
            os._exit(1)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 4096):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()
