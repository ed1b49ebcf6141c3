"""Hide the kernel's cgroup-migration wait behind our own start-up work, where it is paid.

The first write of a pid to a cgroup.procs file after an idle spell waits for an RCU grace
period (5-24 ms measured here) before the migration lock is taken; writes shortly after are
fast. Most creates pay nothing: the container side enters its cgroups without that lock
(cgroups/join.py). A bootstrap that cannot (a user namespace, a joined mount or cgroup
namespace: process/parent.py) is moved by pid, and for that create this thread moves us into
the cgroup we are already in first, so the wait overlaps the rest of create's preparation.
It must not run otherwise: while it waits it holds the cgroup mutex that every cgroup mkdir
and `tasks` write needs. (Repeating the write to keep the lock warm measured slower: every
write takes the global lock that fork needs.)
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


def start() -> None:
    """Start warming (once per process)."""
    global _current
    if _current is None:
        _current = Warmup()


def stop() -> None:
    """Wait for the warm-up thread, if one was started."""
    if _current is not None:
        _current.done()
