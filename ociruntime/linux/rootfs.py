"""Build the container's filesystem view: mounts, /dev, pivot_root, masks, read-only root.

`prepare` runs in the container's new mount namespace before pivot_root; `finalize` runs after
it, inside the new root. A container sharing the runtime's mount namespace gets its mounts
there and a chroot instead (`enter_shared`).
"""

from __future__ import annotations

import errno
import os
import stat

from ociruntime.config.mount_options import PROPAGATION_OPTIONS
from ociruntime.errors import RuntimeFailure, SyscallError
from ociruntime.linux import syscalls as sc
from ociruntime.linux.devices import setup_dev
from ociruntime.linux.mounts import mount_entry, remount
from ociruntime.linux.paths import fd_path, mkdir_all_in_root
from ociruntime.linux.rootfs_plan import RootfsPlan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any



def _root_propagation(plan: RootfsPlan) -> int:
    if plan.propagation:
        try:
            return PROPAGATION_OPTIONS[plan.propagation]
        except KeyError:
            raise RuntimeFailure(
                f"invalid rootfsPropagation {plan.propagation!r}") from None
    return sc.MS_SLAVE | sc.MS_REC


def _needs_dev_setup(mounts: list[dict[str, Any]]) -> bool:
    for m in mounts:
        if os.path.normpath(m.get("destination", "")) == "/dev":
            opts = m.get("options") or []
            if m.get("type") == "bind" or "bind" in opts or "rbind" in opts:
                return False
    return True


def _make_parent_private(path: str) -> None:
    """pivot_root refuses a new root whose parent mount is shared: make that mount private."""
    best = ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) > len(best):
                best = mp
    if best:
        sc.mount(None, best, None, sc.MS_PRIVATE, None)


def prepare(plan: RootfsPlan, own_namespace: bool = True) -> int:
    """Mount everything under the rootfs; return an O_PATH fd of the (bind-mounted) root.

    Without a mount namespace of its own (`own_namespace` false) the container shares the
    runtime's: the root's propagation is left alone and the rootfs is not bound onto itself
    (no pivot_root follows), so the only mounts made are the config's, under the rootfs.
    """
    if own_namespace:
        sc.mount(None, "/", None, _root_propagation(plan), None, shown_target="/")
        parent = os.path.dirname(plan.rootfs.rstrip("/")) or "/"
        if plan.propagation in ("shared", "rshared"):
            _make_parent_private(parent)
        sc.mount(plan.rootfs, plan.rootfs, None, sc.MS_BIND | sc.MS_REC, None)
    root_fd = os.open(plan.rootfs, sc.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    for index, entry in enumerate(plan.mounts):
        mount_entry(root_fd, plan.bundle, entry, plan.cgroup_paths, plan.new_cgroupns,
                    plan.idmapped.get(index))
    if _needs_dev_setup(plan.mounts):
        setup_dev(root_fd, plan.devices, bind_only=plan.in_userns)
    for d in [plan.cwd, *plan.extra_dirs]:
        try:
            os.close(mkdir_all_in_root(root_fd, d))
        except SyscallError as e:
            if e.errno not in (errno.EROFS, errno.EEXIST):
                if d != plan.cwd:
                    raise
                # e.g. /proc/self/fd/N (CVE-2024-21626): resolved inside the root, refused
                raise RuntimeFailure(f"process.cwd {d!r}: cannot be created inside the rootfs:"
                                     f" {e}") from None
    return root_fd


def enter_shared(root_fd: int) -> None:
    """Without a mount namespace of its own: chroot into the rootfs (pivot_root would move
    the runtime's own root)."""
    os.fchdir(root_fd)
    os.chroot(".")
    os.chdir("/")


def pivot(plan: RootfsPlan, root_fd: int) -> None:
    """Make the rootfs the process's `/` (pivot_root, or MS_MOVE + chroot with --no-pivot)."""
    if plan.no_pivot:
        os.chdir(plan.rootfs)
        sc.mount(plan.rootfs, "/", None, sc.MS_MOVE, None)
        os.chroot(".")
        os.chdir("/")
        return
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(root_fd)
        sc.pivot_root(".", ".")
        os.fchdir(old_root)
        # never let the unmount of the old root propagate back to the host
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC, None, shown_target="old root")
        sc.umount(".", sc.MNT_DETACH)
    finally:
        os.close(old_root)
    os.chdir("/")


def _mask(path: str, null_source: str) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise SyscallError("stat", path, e.errno or 0) from None
    if stat.S_ISDIR(st.st_mode):
        sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, None)
    else:
        sc.mount(null_source, path, None, sc.MS_BIND, None, shown_target=path)


def _readonly(path: str) -> None:
    try:
        sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC, None)
    except SyscallError as e:
        if e.errno == errno.ENOENT:
            return
        raise
    remount(path, sc.MS_RDONLY | sc.MS_REC, path)


def _open_null() -> int:
    """O_PATH fd of the container's /dev/null, checked to be the real null device."""
    fd = os.open("/dev/null", sc.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise RuntimeFailure("masked paths: /dev/null in the container is not the null device")
    return fd


def reopen_dev_null() -> None:
    """Stdio that is the host's null device (conmon's read-only stdin) becomes the container's
    own /dev/null, opened read-write as runc does; without a usable one it is left alone."""
    null = -1
    try:
        for fd in (0, 1, 2):
            try:
                st = os.fstat(fd)
            except OSError:
                continue
            if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
                continue
            if null < 0:
                try:
                    null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
                except OSError:
                    return
                if os.fstat(null).st_rdev != os.makedev(1, 3):
                    return
            os.dup2(null, fd)
    finally:
        if null >= 0:
            os.close(null)


def finalize(plan: RootfsPlan) -> None:
    """After pivot: stdio's /dev/null, read-only paths, masked paths (bound to the real
    /dev/null), read-only /."""
    reopen_dev_null()
    for path in plan.readonly_paths:
        _readonly(path)
    if plan.masked:
        null_fd = _open_null()
        try:
            source = fd_path(null_fd) if os.path.isdir("/proc/self/fd") else "/dev/null"
            for path in plan.masked:
                _mask(path, source)
        finally:
            os.close(null_fd)
    if plan.readonly:
        remount("/", sc.MS_RDONLY, "/")
