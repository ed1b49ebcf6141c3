"""`run -t` / `exec -t` without --console-socket: pyrunc relays between the user's terminal
and the container's pty (raw mode, window size follows SIGWINCH), then returns the exit code."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import termios
import tty

_FORWARDED = [s for s in range(1, 32)
              if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGWINCH)]


def _copy_size(master: int) -> None:
    try:
        size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


def proxy(master: int, pid: int) -> int:
    """Relay stdin -> master and master -> stdout until the pty closes; wait for `pid`."""
    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
        _copy_size(master)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    old = {s: signal.signal(s, forward) for s in _FORWARDED}
    old[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, lambda *_: _copy_size(master))
    readers = [master, 0]
    try:
        while master in readers:
            ready, _, _ = select.select(readers, [], [])
            if 0 in ready:
                data = os.read(0, 4096)
                if data:
                    _write_all(master, data)
                else:
                    readers.remove(0)
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    data = b""
                if data:
                    _write_all(1, data)
                else:
                    readers.remove(master)
        _, status = os.waitpid(pid, 0)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        for s, handler in old.items():
            signal.signal(s, handler)
        os.close(master)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
