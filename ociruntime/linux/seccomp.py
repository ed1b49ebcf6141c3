"""`linux.seccomp` through libseccomp, called with ctypes.

Why ctypes on the distribution's libseccomp.so.2 rather than a binding from PyPI: the
maintained binding is built from libseccomp's own source tree (not on PyPI), the PyPI
alternatives are unmaintained or need a compiler; libseccomp itself is the part that must be
right (syscall tables per architecture, BPF generation), and it is what runc and crun use.

The filter is built by the runtime before it forks (unknown names and bad values are reported
as config errors with their JSON path, and the library is loaded while the host filesystem is
still visible); the container side only calls `load()`.
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import os

from ociruntime import log
from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ACT_KILL_THREAD = 0x00000000
ACT_KILL_PROCESS = 0x80000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_NOTIFY = 0x7FC00000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000

ACTIONS = {
    "SCMP_ACT_KILL": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": ACT_TRAP,
    "SCMP_ACT_ERRNO": ACT_ERRNO,
    "SCMP_ACT_TRACE": ACT_TRACE,
    "SCMP_ACT_ALLOW": ACT_ALLOW,
    "SCMP_ACT_LOG": ACT_LOG,
    "SCMP_ACT_NOTIFY": ACT_NOTIFY,
}
OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}
ARCHES = [
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
]
# flag -> libseccomp filter attribute (enum scmp_filter_attr)
_ATTR_NNP = 3
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 4,
    "SECCOMP_FILTER_FLAG_LOG": 6,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 7,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 10,
}
# flag -> the kernel's SECCOMP_FILTER_FLAG_* bit (<linux/seccomp.h>)
KERNEL_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
_NEW_LISTENER = 8
_TSYNC_ESRCH = 16
_SET_MODE_FILTER = 1


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


_lib: ctypes.CDLL | None = None


def library() -> ctypes.CDLL:
    """libseccomp.so.2, with the prototypes we call."""
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError:
            raise RuntimeFailure("linux.seccomp: libseccomp.so.2 is not installed "
                                 "(Debian package libseccomp2)") from None
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        lib.seccomp_notify_fd.argtypes = [ctypes.c_void_p]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _lib = lib
    return _lib


def known_actions() -> list[str]:
    return list(ACTIONS)


def known_operators() -> list[str]:
    return list(OPERATORS)


def known_archs() -> list[str]:
    return list(ARCHES)


def known_flags() -> list[str]:
    return list(FLAGS)


def supported_flags() -> list[str]:
    """Flags this libseccomp can set, and WAIT_KILLABLE_RECV when the kernel has it (we load
    such a filter ourselves where libseccomp is older than 2.6)."""
    try:
        lib = library()
    except RuntimeFailure:
        return []
    ctx = lib.seccomp_init(ACT_ALLOW)
    try:
        return [name for name, attr in FLAGS.items() if lib.seccomp_attr_set(ctx, attr, 0) == 0
                or name == "SECCOMP_FILTER_FLAG_TSYNC" or _kernel_has(name)]
    finally:
        lib.seccomp_release(ctx)


def _seccomp_syscall(flags: int, arg: int | None) -> int:
    """seccomp(SECCOMP_SET_MODE_FILTER, flags, arg): the result, or -errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    number = library().seccomp_syscall_resolve_name(b"seccomp")
    rc = libc.syscall(ctypes.c_long(number), ctypes.c_long(_SET_MODE_FILTER),
                      ctypes.c_ulong(flags), ctypes.c_void_p(arg))
    return rc if rc >= 0 else -ctypes.get_errno()


def _kernel_has(flag: str) -> bool:
    """Whether the kernel takes a flag libseccomp cannot set: probed as libseccomp does, with
    no program (EFAULT once the flags passed the kernel's checks, EINVAL when unknown)."""
    if flag != "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV":
        return False
    return _seccomp_syscall(KERNEL_FLAGS[flag] | _NEW_LISTENER, None) == -errno_mod.EFAULT


def _action(name: str, ret: int | None, where: str, default_errno: int = errno_mod.EPERM) -> int:
    if name not in ACTIONS:
        raise RuntimeFailure(f"{where}: unknown action {name!r}")
    base = ACTIONS[name]
    if base == ACT_ERRNO:
        return base | ((default_errno if ret is None else ret) & 0xFFFF)
    if base == ACT_TRACE:
        return base | ((errno_mod.EPERM if ret is None else ret) & 0xFFFF)
    return base


class SeccompFilter:
    """A libseccomp context built from the config; `load()` installs it in this process.

    `raw_flags` is set when a flag libseccomp cannot set was asked for (WAIT_KILLABLE_RECV
    before libseccomp 2.6): then the program libseccomp generated is loaded with our own
    seccomp(2) call and those kernel flags.
    """

    def __init__(self, ctx: int, uses_notify: bool, skipped: list[str],
                 raw_flags: int | None = None) -> None:
        self.ctx = ctx
        self.uses_notify = uses_notify
        self.skipped = skipped
        self.raw_flags = raw_flags

    def load(self) -> int | None:
        """seccomp_load; the notify fd if the filter has SCMP_ACT_NOTIFY rules."""
        if self.raw_flags is not None:
            return self._load_raw(self.raw_flags)
        lib = library()
        rc = lib.seccomp_load(self.ctx)
        if rc < 0:
            raise RuntimeFailure(f"seccomp: loading the filter failed: {os.strerror(-rc)}")
        if not self.uses_notify:
            return None
        fd = lib.seccomp_notify_fd(self.ctx)
        if fd < 0:
            raise RuntimeFailure(f"seccomp: no notify fd: {os.strerror(-fd)}")
        return fd

    def _load_raw(self, flags: int) -> int | None:
        """Export libseccomp's BPF program and load it with seccomp(2) and `flags`, the way
        libseccomp 2.6 would: NEW_LISTENER (with TSYNC_ESRCH next to TSYNC) for a notify
        filter, WAIT_KILLABLE_RECV only with NEW_LISTENER."""
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            rc = library().seccomp_export_bpf(self.ctx, fd)
            if rc < 0:
                raise RuntimeFailure(f"seccomp: exporting the filter failed: {os.strerror(-rc)}")
            program = os.pread(fd, os.fstat(fd).st_size, 0)
        finally:
            os.close(fd)
        if self.uses_notify:
            flags |= _NEW_LISTENER | (_TSYNC_ESRCH if flags & 1 else 0)
        else:
            flags &= ~KERNEL_FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
        code = ctypes.create_string_buffer(program, len(program))
        prog = _Fprog(len(program) // 8, ctypes.addressof(code))
        rc = _seccomp_syscall(flags, ctypes.addressof(prog))
        if rc < 0:
            raise RuntimeFailure(f"seccomp: loading the filter failed: {os.strerror(-rc)}")
        return rc if self.uses_notify else None

    def release(self) -> None:
        if self.ctx:
            library().seccomp_release(self.ctx)
            self.ctx = 0


def build_filter(seccomp: dict[str, Any], where: str = "linux.seccomp") -> SeccompFilter:
    """Translate `linux.seccomp` into a libseccomp context (not loaded yet)."""
    lib = library()
    default = _action(seccomp.get("defaultAction", ""), None, f"{where}.defaultAction",
                      seccomp.get("defaultErrnoRet", errno_mod.EPERM))
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise RuntimeFailure(f"{where}: seccomp_init failed")
    try:
        lib.seccomp_attr_set(ctx, _ATTR_NNP, 0)
        raw = _flags(lib, ctx, seccomp.get("flags") or [], where)
        for i, arch in enumerate(seccomp.get("architectures") or []):
            if arch not in ARCHES:
                raise RuntimeFailure(f"{where}.architectures[{i}]: unknown arch {arch!r}")
            token = lib.seccomp_arch_resolve_name(arch[len("SCMP_ARCH_"):].lower().encode())
            if token == 0:
                raise RuntimeFailure(f"{where}.architectures[{i}]: {arch} unknown to libseccomp")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -errno_mod.EEXIST:
                raise RuntimeFailure(f"{where}.architectures[{i}]: {os.strerror(-rc)}")
        skipped: list[str] = []
        if default == ACT_NOTIFY:  # the runtime's own last syscalls would wait on the agent
            raise RuntimeFailure(f"{where}.defaultAction: SCMP_ACT_NOTIFY cannot be used as "
                                 "default action")
        uses_notify = False
        for i, rule in enumerate(seccomp.get("syscalls") or []):
            here = f"{where}.syscalls[{i}]"
            action = _action(rule.get("action", ""), rule.get("errnoRet"), f"{here}.action")
            if action == ACT_NOTIFY and "write" in (rule.get("names") or []):
                raise RuntimeFailure(f"{here}: SCMP_ACT_NOTIFY cannot be used for the write "
                                     "syscall (the runtime writes after loading the filter)")
            if action == default:
                continue  # libseccomp refuses rules that repeat the default; they change nothing
            uses_notify = uses_notify or action == ACT_NOTIFY
            conditions = _conditions(rule.get("args") or [], here)
            for name in rule.get("names") or []:
                number = lib.seccomp_syscall_resolve_name(name.encode())
                if number < 0:
                    log.debug(f"unknown seccomp syscall {name!r} ignored")
                    skipped.append(name)
                    continue
                for group in conditions:
                    array = (_ArgCmp * len(group))(*group) if group else None
                    rc = lib.seccomp_rule_add_array(ctx, action, number, len(group), array)
                    if rc < 0:
                        raise RuntimeFailure(f"{here}: adding a rule for {name}: "
                                             f"{os.strerror(-rc)}")
        return SeccompFilter(ctx, uses_notify, skipped, raw)
    except BaseException:
        lib.seccomp_release(ctx)
        raise


def _flags(lib: ctypes.CDLL, ctx: int, flags: list[str], where: str) -> int | None:
    """Set the flags on the context; the kernel flag bits when one needs our own loader."""
    raw = False
    for flag in flags:
        if flag not in FLAGS:
            raise RuntimeFailure(f"{where}.flags: unknown flag {flag!r}")
        if lib.seccomp_attr_set(ctx, FLAGS[flag], 1) != 0:
            if not _kernel_has(flag):
                raise RuntimeFailure(f"{where}.flags: {flag} is not supported by this "
                                     "libseccomp/kernel")
            raw = True
    if not raw:
        return None
    bits = 0
    for flag in flags:
        bits |= KERNEL_FLAGS[flag]
    return bits


class _Fprog(ctypes.Structure):
    """struct sock_fprog: the number of BPF instructions and where they are."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _conditions(args: list[dict[str, Any]], where: str) -> list[list[_ArgCmp]]:
    """The argument comparisons of one rule, as the rules to add.

    libseccomp ANDs the comparisons of one rule but takes at most one per argument; when an
    argument is compared more than once, each comparison becomes a rule of its own (OR), which
    is how runc reads such a config.
    """
    cmps = []
    for j, arg in enumerate(args):
        op = arg.get("op", "")
        if op not in OPERATORS:
            raise RuntimeFailure(f"{where}.args[{j}].op: unknown operator {op!r}")
        cmps.append(_ArgCmp(int(arg.get("index", 0)), OPERATORS[op], int(arg.get("value", 0)),
                            int(arg.get("valueTwo", 0))))
    if not cmps:
        return [[]]
    indexes = [c.arg for c in cmps]
    if len(set(indexes)) == len(indexes):
        return [cmps]
    return [[c] for c in cmps]


def send_to_listener(path: str, notify_fd: int, state: dict[str, Any], metadata: str) -> None:
    """Send the runtime-spec containerProcessState and the notify fd to listenerPath."""
    import _socket

    from ociruntime.jsonio import dumps

    doc = {"ociVersion": state.get("ociVersion", ""), "fds": ["seccompFd"],
           "pid": state.get("pid", 0), "metadata": metadata, "state": state}
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
        fds = notify_fd.to_bytes(4, "little", signed=True)
        sock.sendmsg([dumps(doc).encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
    except OSError as e:
        raise RuntimeFailure(f"seccomp listener {path}: {e.strerror}") from None
    finally:
        sock.close()
