"""Entering the container's cgroups without waiting for the kernel.

Writing a pid to cgroup.procs takes a global lock whose first taking after an idle spell waits
for an RCU grace period (5-15 ms measured here, about half of a `run`). Two ways in skip that
lock, and the container side uses them:

- cgroup v1: a process that writes 0 to a hierarchy's `tasks` file moves its calling thread
  (all of it, when it has one thread) under the cgroup mutex alone: 0.05 ms a hierarchy;
- cgroup v2: a child born in the cgroup (clone3 with CLONE_INTO_CGROUP) is never migrated.

Where the kernel refuses the second (before 5.7, or without the permission clone3 checks) the
forking side writes the child's pid to cgroup.procs instead, and pays the wait.
"""

from __future__ import annotations

import _signal
import _thread
import os

from ociruntime.errors import RuntimeFailure

try:
    from ociruntime.linux._kernel import fork_into_cgroup
except ImportError:  # the extension is not built (ctypes fallback): no clone3
    fork_into_cgroup = None


def _write(target: str, value: str) -> None:
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise RuntimeFailure(f"write {value} to {target}: {os.strerror(e.errno or 0)}") from None


def join_v1_self(paths: dict[str, str]) -> None:
    """Move the calling process, which must have one thread, into every cgroup v1 directory of
    `paths` (key "" is the v2 one, left to fork_into)."""
    for key, path in paths.items():
        if key:
            _write(os.path.join(path, "tasks"), "0")


def fork_into(paths: dict[str, str]) -> int:
    """os.fork(), with the child in the cgroup v2 directory of `paths` (if there is one) by the
    time we return its pid: born there, or else moved there by us (it may run meanwhile; both
    callers hold it until they tell it to go on). Born there only while no other thread runs
    (see _kernel.c). The child gets 0 and never an exception."""
    v2 = paths.get("")
    if not v2:
        return os.fork()
    try:
        fd = os.open(v2, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeFailure(f"open {v2}: {os.strerror(e.errno or 0)}") from None
    try:
        # _count(): threads started from Python and still running (a warm-up, say); with one,
        # clone3 would leave the child glibc state of a thread it does not have
        if fork_into_cgroup is not None and _thread._count() == 0:
            try:
                return fork_into_cgroup(fd)
            except OSError:
                pass  # an old kernel, or clone3's permission check: the migration below
        pid = os.fork()
        if pid:
            try:
                _write(os.path.join(v2, "cgroup.procs"), str(pid))
            except RuntimeFailure:
                os.kill(pid, _signal.SIGKILL)
                os.waitpid(pid, 0)
                raise
        return pid
    finally:
        os.close(fd)
