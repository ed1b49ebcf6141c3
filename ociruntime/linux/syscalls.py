"""Thin ctypes wrappers for the kernel calls Python's os module lacks.

Every wrapper raises SyscallError(call, path, errno) on failure so that the error names what
was attempted and on which path.
"""

from __future__ import annotations

import ctypes
import os

from ociruntime.errors import SyscallError

_libc = ctypes.CDLL(None, use_errno=True)

_SYSCALL_NUMBERS = {
    "x86_64": {"mount_setattr": 442, "keyctl": 250, "pivot_root": 155, "openat2": 437,
               "capset": 126, "close_range": 436},
    "aarch64": {"mount_setattr": 442, "keyctl": 219, "pivot_root": 41, "openat2": 437,
                "capset": 91, "close_range": 436},
}
_NR = _SYSCALL_NUMBERS.get(os.uname().machine, _SYSCALL_NUMBERS["x86_64"])

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

_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.syscall.restype = ctypes.c_long


def _fail(call: str, path: str) -> SyscallError:
    return SyscallError(call, path, ctypes.get_errno())


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None,
          *, shown_target: str | None = None) -> None:
    """mount(2); `shown_target` is the path named in an error (e.g. the config destination)."""
    if _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
        raise _fail("mount", shown_target or target)


def umount(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    if _libc.umount2(_b(target), flags) != 0:
        raise _fail("umount", target)


def unshare(flags: int) -> None:
    """unshare(2)."""
    if _libc.unshare(flags) != 0:
        raise _fail("unshare", hex(flags))


def setns(fd: int, nstype: int, path: str = "") -> None:
    """setns(2) on an open namespace file."""
    if _libc.setns(fd, nstype) != 0:
        raise _fail("setns", path or str(fd))


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2)."""
    if _libc.syscall(_NR["pivot_root"], _b(new_root), _b(put_old)) != 0:
        raise _fail("pivot_root", new_root)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2); returns the call's result."""
    rc = _libc.prctl(option, arg2, arg3, arg4, arg5)
    if rc < 0:
        raise _fail("prctl", str(option))
    return rc


def setdomainname(name: str) -> None:
    """setdomainname(2)."""
    raw = name.encode()
    if _libc.setdomainname(raw, len(raw)) != 0:
        raise _fail("setdomainname", name)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2); always adds O_CLOEXEC. Raises SyscallError naming `path`."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = _libc.syscall(_NR["openat2"], dirfd, _b(path), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        raise _fail("openat2", path)
    return fd


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) for the calling thread, with 64-bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    if _libc.syscall(_NR["capset"], ctypes.byref(header), data) != 0:
        raise _fail("capset", "")


CLOSE_RANGE_CLOEXEC = 1 << 2


def close_range_cloexec(first: int) -> bool:
    """Mark fds >= `first` close-on-exec with one call; False if the kernel lacks close_range."""
    return _libc.syscall(_NR["close_range"], first, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC) == 0


_KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring(name: str) -> None:
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING): give the container its own session keyring."""
    if _libc.syscall(_NR["keyctl"], _KEYCTL_JOIN_SESSION_KEYRING, _b(name)) < 0:
        err = ctypes.get_errno()
        if err != 38:  # ENOSYS: the kernel has no keyrings; nothing to isolate
            raise SyscallError("keyctl join session keyring", name, err)


AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(fd: int, attr_set: int, attr_clear: int, recursive: bool, shown: str) -> None:
    """mount_setattr(2) on the mount an fd refers to (recursive mount options)."""
    attr = _MountAttr(attr_set, attr_clear, 0, 0)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    if _libc.syscall(_NR["mount_setattr"], fd, b"", flags, ctypes.byref(attr),
                     ctypes.sizeof(attr)) != 0:
        raise _fail("mount_setattr", shown)


def set_name(name: bytes) -> None:
    """prctl(PR_SET_NAME): the comm shown in /proc/PID/comm (16 bytes at most)."""
    buf = ctypes.create_string_buffer(name[:15])
    _libc.prctl(PR_SET_NAME, ctypes.addressof(buf), 0, 0, 0)
