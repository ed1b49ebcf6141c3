"""Resolve and create paths inside a container's rootfs without escaping it.

Every lookup goes through openat2(RESOLVE_IN_ROOT), so symlinks (absolute or ``..``) in the
rootfs are resolved as if the rootfs were ``/``. Callers get O_PATH fds and act on
``/proc/self/fd/N`` so nothing re-resolves a path that could have changed.
"""

from __future__ import annotations

import errno
import os

from ociruntime.errors import SyscallError
from ociruntime.linux import syscalls as sc

_RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS


def fd_path(fd: int) -> str:
    """The magic-link path of an open fd (usable as a mount target or source)."""
    return f"/proc/self/fd/{fd}"


def open_in_root(root_fd: int, path: str, flags: int = sc.O_PATH) -> int:
    """Open `path` (relative to the container's /) inside the root; O_CLOEXEC always."""
    return sc.openat2(root_fd, path.lstrip("/") or ".", flags, _RESOLVE)


def _components(path: str) -> list[str]:
    return [c for c in path.split("/") if c and c != "."]


def mkdir_all_in_root(root_fd: int, path: str, mode: int = 0o755) -> int:
    """mkdir -p `path` inside the root; return an O_PATH fd of the final directory.

    A dangling symlink on the way is followed the way the kernel would inside the root (an
    absolute target is taken from the root, `..` stops at it) and the missing directories are
    made there, so nothing is ever created outside the rootfs.
    """
    for _ in range(40):
        redirected = _mkdir_walk(root_fd, path, mode)
        if isinstance(redirected, int):
            return redirected
        path = redirected
    raise SyscallError("mkdir", path, errno.ELOOP)


def _mkdir_walk(root_fd: int, path: str, mode: int) -> int | str:
    """One pass of mkdir_all; an fd when done, or the path to retry after a dangling link."""
    parts = _components(path)
    current = os.dup(root_fd)
    done: list[str] = []
    try:
        for index, part in enumerate(parts):
            done.append(part)
            rel = "/".join(done)
            try:
                nxt = open_in_root(root_fd, rel, sc.O_PATH | os.O_DIRECTORY)
            except SyscallError as e:
                if e.errno != errno.ENOENT or part == "..":
                    raise
                try:
                    os.mkdir(part, mode, dir_fd=current)
                except FileExistsError:
                    target = _dangling_link(current, part)
                    if target is not None:
                        base = "" if target.startswith("/") else "/".join(done[:-1])
                        rest = "/".join(parts[index + 1:])
                        return "/".join(p for p in (base, target, rest) if p)
                except OSError as e2:
                    raise SyscallError("mkdir", "/" + rel, e2.errno or 0) from None
                nxt = open_in_root(root_fd, rel, sc.O_PATH | os.O_DIRECTORY)
            os.close(current)
            current = nxt
        return current
    except BaseException:
        os.close(current)
        raise


def _dangling_link(dir_fd: int, name: str) -> str | None:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None


def create_file_in_root(root_fd: int, path: str, mode: int = 0o644) -> int:
    """Make sure a regular file (or existing non-dir) exists at `path`; return an O_PATH fd."""
    try:
        return open_in_root(root_fd, path)
    except SyscallError as e:
        if e.errno != errno.ENOENT:
            raise
    parent, _, name = path.rstrip("/").rpartition("/")
    pfd = mkdir_all_in_root(root_fd, parent)
    try:
        try:
            fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                         dir_fd=pfd)
            os.close(fd)
        except FileExistsError:
            pass
        except OSError as e:
            raise SyscallError("create", path, e.errno or 0) from None
    finally:
        os.close(pfd)
    return open_in_root(root_fd, path)


def is_dir_fd(fd: int) -> bool:
    """True when an O_PATH fd refers to a directory."""
    import stat

    return stat.S_ISDIR(os.fstat(fd).st_mode)
