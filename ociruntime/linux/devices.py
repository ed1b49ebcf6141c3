"""Device nodes and /dev symlinks inside the rootfs."""

from __future__ import annotations

import errno
import os
import stat

from ociruntime.errors import SyscallError
from ociruntime.linux import syscalls as sc
from ociruntime.linux.paths import create_file_in_root, fd_path, mkdir_all_in_root, open_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


DEFAULT_DEVICES: list[dict[str, Any]] = [
    {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
    {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5},
    {"path": "/dev/full", "type": "c", "major": 1, "minor": 7},
    {"path": "/dev/random", "type": "c", "major": 1, "minor": 8},
    {"path": "/dev/urandom", "type": "c", "major": 1, "minor": 9},
    {"path": "/dev/tty", "type": "c", "major": 5, "minor": 0},
]

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _remove_existing(pfd: int, name: str) -> None:
    try:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise SyscallError("mknod", name, errno.EISDIR)
    os.unlink(name, dir_fd=pfd)


def create_device(root_fd: int, dev: dict[str, Any], bind_only: bool) -> None:
    """mknod one device (mode, uid, gid from the config); bind the host's node if not allowed."""
    path = dev["path"]
    parent, _, name = path.rstrip("/").rpartition("/")
    mode = dev.get("fileMode", 0o666) & 0o7777
    kind = _TYPES[dev.get("type", "c")]
    if not bind_only:
        pfd = mkdir_all_in_root(root_fd, parent)
        try:
            _remove_existing(pfd, name)
            try:
                rdev = os.makedev(dev.get("major", 0), dev.get("minor", 0))
                os.mknod(name, kind | mode, rdev, dir_fd=pfd)
                os.chown(name, dev.get("uid", 0), dev.get("gid", 0), dir_fd=pfd,
                         follow_symlinks=False)
                os.chmod(name, mode, dir_fd=pfd, follow_symlinks=False)
                return
            except PermissionError:
                pass  # no CAP_MKNOD (user namespace): fall back to a bind mount
            except OSError as e:
                raise SyscallError("mknod", path, e.errno or 0) from None
        finally:
            os.close(pfd)
    target = create_file_in_root(root_fd, path)
    try:
        sc.mount(path, fd_path(target), None, sc.MS_BIND, None, shown_target=path)
    finally:
        os.close(target)


def create_symlinks(root_fd: int, links: list[tuple[str, str]]) -> None:
    """Create /dev symlinks (target, link path), replacing what is there."""
    for target, link in links:
        parent, _, name = link.rpartition("/")
        pfd = mkdir_all_in_root(root_fd, parent)
        try:
            try:
                os.symlink(target, name, dir_fd=pfd)
            except FileExistsError:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode) and os.readlink(name, dir_fd=pfd) == target:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    continue
                os.unlink(name, dir_fd=pfd)
                os.symlink(target, name, dir_fd=pfd)
        finally:
            os.close(pfd)


def setup_dev(root_fd: int, devices: list[dict[str, Any]], bind_only: bool) -> None:
    """Default devices, config devices, /dev/ptmx and the /dev/fd-style symlinks."""
    for dev in DEFAULT_DEVICES:
        if not any(d["path"] == dev["path"] for d in devices):
            create_device(root_fd, dev, bind_only)
    for dev in devices:
        create_device(root_fd, dev, bind_only)
    links = [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ]
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    create_symlinks(root_fd, links)
    # /dev/ptmx -> pts/ptmx (the container's own devpts instance)
    try:
        fd = open_in_root(root_fd, "/dev/pts")
        os.close(fd)
    except SyscallError:
        return
    create_symlinks(root_fd, [("pts/ptmx", "/dev/ptmx")])
