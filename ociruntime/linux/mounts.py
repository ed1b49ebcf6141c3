"""Perform one config.json mount inside the rootfs (before pivot_root)."""

from __future__ import annotations

import errno
import os

from ociruntime.cgroups.layout import discover
from ociruntime.config.mount_options import BIND_REMOUNT_FLAGS, ParsedOptions, parse_mount_options
from ociruntime.errors import RuntimeFailure, SyscallError
from ociruntime.linux import syscalls as sc
from ociruntime.linux.paths import create_file_in_root, fd_path, mkdir_all_in_root, open_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


# statvfs f_flag bits share values with the MS_* flags they report
_LOCKABLE = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_NOATIME | sc.MS_NODIRATIME | \
    sc.MS_RELATIME | sc.MS_RDONLY


def remount(target: str, flags: int, shown: str) -> None:
    """Bind-remount `target` with `flags`, keeping flags the kernel locked (user namespaces)."""
    try:
        sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | flags, None, shown_target=shown)
    except SyscallError as e:
        if e.errno != errno.EPERM:
            raise
        locked = os.statvfs(target).f_flag & _LOCKABLE
        sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | flags | locked, None,
                 shown_target=shown)


def _apply_propagation(root_fd: int, dest: str, opts: ParsedOptions) -> None:
    if not opts.propagation:
        return
    fd = open_in_root(root_fd, dest)
    try:
        for flag in opts.propagation:
            sc.mount(None, fd_path(fd), None, flag, None, shown_target=dest)
    finally:
        os.close(fd)


def _bind(root_fd: int, bundle: str, entry: dict[str, Any], opts: ParsedOptions) -> None:
    dest = entry["destination"]
    source = entry.get("source") or ""
    if not source:
        raise RuntimeFailure(f"mount {dest}: bind mount needs a source")
    if not source.startswith("/"):
        source = os.path.join(bundle, source)
    try:
        is_dir = os.path.isdir(source)
        os.lstat(source)
    except OSError as e:
        why = os.strerror(e.errno or 0)
        raise RuntimeFailure(f"mount {dest}: source {source}: {why}") from None
    target = mkdir_all_in_root(root_fd, dest) if is_dir else create_file_in_root(root_fd, dest)
    try:
        sc.mount(source, fd_path(target), None, opts.flags & (sc.MS_BIND | sc.MS_REC), None,
                 shown_target=dest)
    finally:
        os.close(target)
    extra = opts.flags & BIND_REMOUNT_FLAGS
    if extra or opts.cleared & BIND_REMOUNT_FLAGS:
        fd = open_in_root(root_fd, dest)
        try:
            remount(fd_path(fd), extra, dest)
        finally:
            os.close(fd)


def _mount_fs(root_fd: int, entry: dict[str, Any], opts: ParsedOptions) -> None:
    dest = entry["destination"]
    fstype = entry.get("type") or ""
    source = entry.get("source") or fstype or "none"
    target = mkdir_all_in_root(root_fd, dest)
    try:
        flags = opts.flags
        if "tmpcopyup" in opts.extensions and fstype != "tmpfs":
            raise RuntimeFailure(f"mount {dest}: tmpcopyup needs a tmpfs mount")
        try:
            sc.mount(source, fd_path(target), fstype, flags & ~sc.MS_RDONLY
                     if "tmpcopyup" in opts.extensions else flags, opts.data_string,
                     shown_target=dest)
            if "tmpcopyup" in opts.extensions:
                _copy_up(root_fd, target, dest, flags)
        except SyscallError as e:
            # sysfs/mqueue cannot be mounted without owning the netns/ipcns: bind the host's
            fallback = {"sysfs": "/sys", "mqueue": "/dev/mqueue"}.get(fstype)
            if e.errno != errno.EPERM or not fallback:
                raise
            sc.mount(fallback, fd_path(target), None, sc.MS_BIND | sc.MS_REC, None,
                     shown_target=dest)
            fd = open_in_root(root_fd, dest)
            try:
                remount(fd_path(fd), opts.flags & BIND_REMOUNT_FLAGS, dest)
            finally:
                os.close(fd)
    finally:
        os.close(target)


def _attach_idmapped(root_fd: int, entry: dict[str, Any], opts: ParsedOptions,
                     tree_fd: int) -> None:
    from ociruntime.linux.idmap import attach

    dest = entry["destination"]
    is_dir = _stat_is_dir(tree_fd)
    target = mkdir_all_in_root(root_fd, dest) if is_dir else create_file_in_root(root_fd, dest)
    try:
        attach(tree_fd, fd_path(target), dest)
    finally:
        os.close(target)
        os.close(tree_fd)
    extra = opts.flags & BIND_REMOUNT_FLAGS
    if extra:
        fd = open_in_root(root_fd, dest)
        try:
            remount(fd_path(fd), extra, dest)
        finally:
            os.close(fd)


def _stat_is_dir(fd: int) -> bool:
    import stat

    return stat.S_ISDIR(os.fstat(fd).st_mode)


def _copy_up(root_fd: int, lower_fd: int, dest: str, flags: int) -> None:
    """tmpcopyup: copy what the directory held before the tmpfs covered it (with owners)."""
    import shutil

    upper_fd = open_in_root(root_fd, dest)
    try:
        src, dst = fd_path(lower_fd), fd_path(upper_fd)
        st = os.stat(src)
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        os.chown(dst, st.st_uid, st.st_gid)
        os.chmod(dst, st.st_mode & 0o7777)
        for base, dirs, files in os.walk(src):
            rel = os.path.relpath(base, src)
            for name in dirs + files:
                info = os.lstat(os.path.join(base, name))
                os.lchown(os.path.join(dst, rel, name), info.st_uid, info.st_gid)
        if flags & sc.MS_RDONLY:
            remount(dst, flags & BIND_REMOUNT_FLAGS, dest)
    except OSError as e:
        raise RuntimeFailure(f"tmpcopyup {dest}: {e.strerror}: {e.filename}") from None
    finally:
        os.close(upper_fd)


def _mount_cgroup(root_fd: int, entry: dict[str, Any], opts: ParsedOptions,
                  cgroup_paths: dict[str, str], new_cgroupns: bool) -> None:
    """Show the container its cgroups at the destination. v1: a tmpfs with a bind of the
    container's own cgroup per hierarchy. v2, as runc: a cgroup2 mount (the whole hierarchy
    unless the container has a cgroup namespace); where the kernel refuses that (a user
    namespace without a cgroup namespace), a bind of the host's hierarchy, or of the
    container's own cgroup when it has a cgroup namespace."""
    dest = entry["destination"]
    flags = opts.flags & BIND_REMOUNT_FLAGS
    hierarchies = discover()
    if hierarchies and all(h.version == 2 for h in hierarchies):
        target = mkdir_all_in_root(root_fd, dest)
        try:
            try:  # the config's source names the mount, as runc does
                sc.mount(entry.get("source") or "cgroup2", fd_path(target), "cgroup2", flags,
                         None, shown_target=dest)
                return
            except SyscallError as e:
                if e.errno not in (errno.EPERM, errno.EBUSY):
                    raise
            source = cgroup_paths.get("") if new_cgroupns else None
            sc.mount(source or hierarchies[0].mountpoint, fd_path(target), None,
                     sc.MS_BIND | sc.MS_REC, None, shown_target=dest)
        finally:
            os.close(target)
        fd = open_in_root(root_fd, dest)
        try:
            remount(fd_path(fd), flags, dest)
        finally:
            os.close(fd)
        return
    target = mkdir_all_in_root(root_fd, dest)
    try:
        sc.mount("tmpfs", fd_path(target), "tmpfs", flags & ~sc.MS_RDONLY, "mode=755",
                 shown_target=dest)
    finally:
        os.close(target)
    for h in hierarchies:
        host_path = cgroup_paths.get(h.key)
        if not host_path or not os.path.isdir(host_path):
            continue
        sub = f"{dest.rstrip('/')}/{os.path.basename(h.mountpoint)}"
        sfd = mkdir_all_in_root(root_fd, sub)
        try:
            sc.mount(host_path, fd_path(sfd), None, sc.MS_BIND | sc.MS_REC, None, shown_target=sub)
        finally:
            os.close(sfd)
        sfd = open_in_root(root_fd, sub)
        try:
            remount(fd_path(sfd), flags | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, sub)
        finally:
            os.close(sfd)
    if flags & sc.MS_RDONLY:
        fd = open_in_root(root_fd, dest)
        try:
            sc.mount(None, fd_path(fd), None, sc.MS_REMOUNT | flags, "mode=755", shown_target=dest)
        finally:
            os.close(fd)


def mount_entry(root_fd: int, bundle: str, entry: dict[str, Any], cgroup_paths: dict[str, str],
                new_cgroupns: bool, idmapped_fd: int | None = None) -> None:
    """Mount one entry of config `mounts` at its destination inside the rootfs.

    `idmapped_fd` is a detached idmapped tree the parent prepared for this entry.
    """
    opts = parse_mount_options(entry.get("options"))
    if idmapped_fd is not None:
        _attach_idmapped(root_fd, entry, opts, idmapped_fd)
        return
    fstype = entry.get("type") or ""
    if fstype == "bind":
        opts.flags |= sc.MS_BIND
    if fstype == "cgroup" and not opts.is_bind:
        _mount_cgroup(root_fd, entry, opts, cgroup_paths, new_cgroupns)
    elif opts.is_bind:
        _bind(root_fd, bundle, entry, opts)
    else:
        _mount_fs(root_fd, entry, opts)
    _apply_propagation(root_fd, entry["destination"], opts)
    if opts.rec_set or opts.rec_clear:
        fd = open_in_root(root_fd, entry["destination"])
        try:
            sc.mount_setattr(fd, opts.rec_set, opts.rec_clear, True, entry["destination"])
        finally:
            os.close(fd)
