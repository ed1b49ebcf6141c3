"""Entering the container's cgroups without waiting for the kernel.

Writing a pid to cgroup.procs takes a global lock whose first taking after an idle spell waits
for an RCU grace period (5-15 ms measured here, about half of a `run`). Two ways in skip that
lock, and the container side uses them:

- cgroup v1: a process that writes 0 to a hierarchy's `tasks` file moves its calling thread
  (all of it, when it has one thread) under the cgroup mutex alone: 0.05 ms a hierarchy;
- cgroup v2: a child born in the cgroup (clone3 with CLONE_INTO_CGROUP) is never migrated.

Where the kernel cannot do the second (before 5.7, clone3 filtered by seccomp, the extension
not built) the forking side moves the child by pid before letting it run, and pays the wait;
where it refuses (no permission, pids.max reached) that is the error. A v1 `tasks` file that
is not writable where cgroup.procs is (a delegation of cgroup.procs alone) gets the pid there.
"""

from __future__ import annotations

import _signal
import _thread
import errno
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
            try:
                _write(os.path.join(path, "tasks"), "0")
            except RuntimeFailure:
                _write(os.path.join(path, "cgroup.procs"), str(os.getpid()))


# clone3 errors meaning "cannot be done this way" rather than "refused": no clone3 (or seccomp
# says so), a kernel without CLONE_INTO_CGROUP (E2BIG before 5.7 sees a larger struct, EINVAL)
_UNSUPPORTED = frozenset({errno.ENOSYS, errno.E2BIG, errno.EINVAL, errno.EPERM})


def fork_into(paths: dict[str, str]) -> int:
    """os.fork(), with the child in the cgroup v2 directory of `paths` (if there is one) before
    it runs any of our code: born there, or else moved there by us while it waits. Born there
    only while no other Python thread runs (see _kernel.c; C threads: pyrunc starts none). The
    child gets 0 and never an exception."""
    v2 = paths.get("")
    if not v2:
        return os.fork()
    try:
        fd = os.open(v2, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeFailure(f"open {v2}: {os.strerror(e.errno or 0)}") from None
    try:
        if fork_into_cgroup is not None and _thread._count() == 0:
            try:
                return fork_into_cgroup(fd)
            except OSError as e:
                if e.errno not in _UNSUPPORTED:
                    raise RuntimeFailure(f"fork into {v2}: {os.strerror(e.errno or 0)}"
                                         ) from None
        return _fork_then_move(v2)
    finally:
        os.close(fd)


def _fork_then_move(v2: str) -> int:
    """os.fork(); the child waits on a pipe until we have written its pid to v2's cgroup.procs
    (and exits if we could not), so nothing it does, a fork included, happens outside."""
    held, release = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(release)
        placed = os.read(held, 1)
        os.close(held)
        if placed != b"1":
            os._exit(1)
        return 0
    os.close(held)
    try:
        _write(os.path.join(v2, "cgroup.procs"), str(pid))
        os.write(release, b"1")
    except BaseException:
        os.kill(pid, _signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(release)
    return pid
