"""Hide the kernel's cgroup-migration wait behind our own start-up work.

The first write to a cgroup.procs file after an idle spell waits for an RCU grace period
(8-24 ms measured here) before the migration lock is taken; writes shortly after are fast.
Moving ourselves into the cgroup we are already in costs nothing else, so create and run start
a thread that does it before their heavy imports; the wait then overlaps the imports and the
config validation. (Repeating the write to keep the lock warm measured slower: every write
takes the global lock that fork needs.)
"""

from __future__ import annotations

import _thread
import os


def _own_procs_file() -> str | None:
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers:
            first = controllers.split(",")[0].removeprefix("name=")
            candidate = f"/sys/fs/cgroup/{first}{path}/cgroup.procs"
        else:
            candidate = f"/sys/fs/cgroup{path}/cgroup.procs"
        if os.path.exists(candidate):
            return candidate
    return None


def _migrate_self(path: str, finished: _thread.LockType) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)
    except OSError:
        pass
    finally:
        finished.release()


class Warmup:
    """One self-migration in a thread; `done()` waits for it (the failure path does, before
    it removes cgroups; the fork does not wait: the child gets none of the thread)."""

    def __init__(self) -> None:
        self._finished = _thread.allocate_lock()
        path = _own_procs_file() if os.geteuid() == 0 else None
        if path is None:
            return
        self._finished.acquire()
        _thread.start_new_thread(_migrate_self, (path, self._finished))

    def done(self) -> None:
        self._finished.acquire()
        self._finished.release()


_current: Warmup | None = None


# commands that move a process into a cgroup, and the global flags that take a value
MIGRATING = frozenset({"create", "run", "exec"})
VALUED_GLOBAL_FLAGS = frozenset({"--root", "--log", "--log-format", "--rootless", "--criu"})


def command_word(argv: list[str]) -> str | None:
    """The command of a pyrunc command line (global flags and their values skipped), read
    without the CLI parser; a spelling it does not know just yields no early warm-up."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            return arg
        i += 2 if arg in VALUED_GLOBAL_FLAGS else 1
    return None


def start_for(argv: list[str]) -> None:
    """Called by the launcher before the CLI loads: the earlier the wait starts, the more of
    it the imports hide (exec's bootstrap waited ~5 ms for it when it began after them)."""
    if command_word(argv) in MIGRATING:
        start()


def start() -> None:
    """Start warming (once per process; create and run call it first thing)."""
    global _current
    if _current is None:
        _current = Warmup()


def stop() -> None:
    """Wait for the warm-up thread, if one was started."""
    if _current is not None:
        _current.done()
