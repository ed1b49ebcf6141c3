"""Hide the kernel's first-migration wait behind our own start-up work.

The first write to a cgroup.procs file after an idle spell waits for an RCU grace period
(8-24 ms measured here) before the migration lock is taken; writes in the following moments
are fast. Moving ourselves into the cgroup we are already in costs nothing else, so a thread
does it while the main thread reads and validates the config.
"""

from __future__ import annotations

import _thread
import os


def _migrate_self(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)
    except OSError:
        pass


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


class Warmup:
    """Starts the self-migration in a thread; `wait()` joins it (call before forking)."""

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        path = _own_procs_file()
        if path is None:
            return
        self._lock.acquire()

        def run() -> None:
            try:
                _migrate_self(path)
            finally:
                self._lock.release()

        _thread.start_new_thread(run, ())

    def wait(self) -> None:
        self._lock.acquire()
        self._lock.release()
