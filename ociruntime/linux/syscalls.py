"""Thin wrappers for the kernel calls Python's os module lacks (raw calls through kernel.py).

Every wrapper raises SyscallError(call, path, errno) on failure so that the error names what
was attempted and on which path.
"""

from __future__ import annotations

import os

from ociruntime.errors import SyscallError
from ociruntime.linux.kernel import call, words

# clone(2) / unshare(2) flags
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MS_PROPAGATION = MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED

MNT_DETACH = 2

# openat2 resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

O_PATH = getattr(os, "O_PATH", 0o10000000)

# prctl
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None,
          *, shown_target: str | None = None) -> None:
    """mount(2); `shown_target` is the path named in an error (e.g. the config destination)."""
    try:
        call("mount", _b(source), _b(target), _b(fstype), flags, _b(data))
    except OSError as e:
        raise SyscallError("mount", shown_target or target, e.errno) from None


def umount(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    try:
        call("umount2", _b(target), flags)
    except OSError as e:
        raise SyscallError("umount", target, e.errno) from None


def unshare(flags: int) -> None:
    """unshare(2)."""
    try:
        call("unshare", flags)
    except OSError as e:
        raise SyscallError("unshare", hex(flags), e.errno) from None


def setns(fd: int, nstype: int, path: str = "") -> None:
    """setns(2) on an open namespace file."""
    try:
        call("setns", fd, nstype)
    except OSError as e:
        raise SyscallError("setns", path or str(fd), e.errno) from None


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2)."""
    try:
        call("pivot_root", _b(new_root), _b(put_old))
    except OSError as e:
        raise SyscallError("pivot_root", new_root, e.errno) from None


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2); returns the call's result."""
    try:
        return call("prctl", option, arg2, arg3, arg4, arg5)
    except OSError as e:
        raise SyscallError("prctl", str(option), e.errno) from None


def setdomainname(name: str) -> None:
    """setdomainname(2)."""
    raw = name.encode()
    try:
        call("setdomainname", raw, len(raw))
    except OSError as e:
        raise SyscallError("setdomainname", name, e.errno) from None


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2); always adds O_CLOEXEC. Raises SyscallError naming `path`."""
    how = words(flags | os.O_CLOEXEC, mode, resolve)  # struct open_how
    try:
        return call("openat2", dirfd, _b(path), how, len(how))
    except OSError as e:
        raise SyscallError("openat2", path, e.errno) from None


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) for the calling thread, with 64-bit masks."""
    header = words(_LINUX_CAPABILITY_VERSION_3, 0, size=4)  # version, pid (this thread)
    data = words(effective, permitted, inheritable,  # two __user_cap_data_struct
                 effective >> 32, permitted >> 32, inheritable >> 32, size=4)
    try:
        call("capset", header, data)
    except OSError as e:
        raise SyscallError("capset", "", e.errno) from None


CLOSE_RANGE_CLOEXEC = 1 << 2


def close_range_cloexec(first: int) -> bool:
    """Mark fds >= `first` close-on-exec with one call; False if the kernel lacks close_range."""
    try:
        call("close_range", first, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC)
    except OSError:
        return False
    return True


_KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring(name: str) -> None:
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING): give the container its own session keyring."""
    try:
        call("keyctl", _KEYCTL_JOIN_SESSION_KEYRING, _b(name))
    except OSError as e:
        if e.errno != 38:  # ENOSYS: the kernel has no keyrings; nothing to isolate
            raise SyscallError("keyctl join session keyring", name, e.errno) from None


AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000


def mount_attr(attr_set: int, attr_clear: int, propagation: int = 0, userns_fd: int = 0
               ) -> bytes:
    """struct mount_attr for mount_setattr(2)."""
    return words(attr_set, attr_clear, propagation, userns_fd)


def mount_setattr(fd: int, attr_set: int, attr_clear: int, recursive: bool, shown: str) -> None:
    """mount_setattr(2) on the mount an fd refers to (recursive mount options)."""
    attr = mount_attr(attr_set, attr_clear)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    try:
        call("mount_setattr", fd, b"", flags, attr, len(attr))
    except OSError as e:
        raise SyscallError("mount_setattr", shown, e.errno) from None


def set_name(name: bytes) -> None:
    """prctl(PR_SET_NAME): the comm shown in /proc/PID/comm (16 bytes at most)."""
    try:
        call("prctl", PR_SET_NAME, name[:15])
    except OSError:
        pass
