"""The raw system-call layer: the C extension is built and agrees with the ctypes fallback.

Each call is made through both backends in a forked child (some change the process), and the
child reports what the kernel then shows in /proc, so the two are compared on real effects.
"""

from __future__ import annotations

import errno
import os
import sys

import pytest

from ociruntime.linux import _kernel_ctypes, kernel
from tests.helpers import in_child

BACKENDS = {"c": None, "ctypes": _kernel_ctypes}


def _backend_syscall(name: str):
    module = BACKENDS[name]
    if module is None:
        from ociruntime.linux import _kernel

        return _kernel.syscall, _kernel.address
    return module.syscall, module.address


def test_the_c_extension_is_built_and_used():
    assert kernel.BACKEND == "c"


@pytest.mark.parametrize("backend", BACKENDS)
def test_prctl_name_and_dumpable(backend):
    syscall, _ = _backend_syscall(backend)

    def child():
        syscall(kernel.NR["prctl"], 15, b"kern-test-name")  # PR_SET_NAME
        syscall(kernel.NR["prctl"], 4, 0)  # PR_SET_DUMPABLE 0
        dumpable = syscall(kernel.NR["prctl"], 3)  # PR_GET_DUMPABLE
        with open("/proc/self/comm") as f:
            return f"{f.read().strip()} {dumpable}"

    assert in_child(child) == "kern-test-name 0"


@pytest.mark.parametrize("backend", BACKENDS)
def test_errors_carry_errno(backend):
    syscall, _ = _backend_syscall(backend)
    with pytest.raises(OSError) as raised:
        syscall(kernel.NR["setns"], 987654, 0)
    assert raised.value.errno == errno.EBADF
    with pytest.raises(OSError) as raised:
        syscall(kernel.NR["pivot_root"], b"/nonexistent-a", b"/nonexistent-b")
    assert raised.value.errno in (errno.ENOENT, errno.EPERM, errno.EINVAL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_negative_ints_and_struct_buffers(backend):
    """openat2 with AT_FDCWD (-100) and a struct open_how made by kernel.words."""
    syscall, _ = _backend_syscall(backend)
    how = kernel.words(os.O_RDONLY | os.O_CLOEXEC, 0, 0)
    fd = syscall(kernel.NR["openat2"], -100, b"/proc/self/status", how, len(how))
    try:
        assert os.read(fd, 5) == b"Name:"
    finally:
        os.close(fd)


@pytest.mark.parametrize("backend", BACKENDS)
def test_capset_through_syscalls(backend, monkeypatch):
    """syscalls.capset lowers the effective set; /proc/self/status shows the same masks."""
    from ociruntime.linux import syscalls

    syscall, _ = _backend_syscall(backend)
    monkeypatch.setattr(syscalls, "call", lambda name, *a: syscall(kernel.NR[name], *a))
    if os.geteuid() != 0:
        pytest.fail("the test suite runs as root")

    def child():
        keep = (1 << 0) | (1 << 21) | (1 << 39)  # CAP_CHOWN, CAP_SYS_ADMIN, CAP_BPF
        syscalls.capset(keep, keep, 0)
        with open("/proc/self/status") as f:
            fields = dict(line.split(":\t", 1) for line in f if line.startswith("Cap"))
        return f"{int(fields['CapEff'], 16):x} {int(fields['CapPrm'], 16):x}"

    keep = (1 << 0) | (1 << 21) | (1 << 39)
    assert in_child(child) == f"{keep:x} {keep:x}"


def test_addresses_agree():
    from ociruntime.linux import _kernel

    data, scratch = b"some bytes", bytearray(32)
    assert _kernel.address(data) == _kernel_ctypes.address(data)
    assert _kernel.address(scratch) == _kernel_ctypes.address(scratch)


def test_bad_arguments_are_type_errors():
    from ociruntime.linux import _kernel

    with pytest.raises(TypeError):
        _kernel.syscall(kernel.NR["prctl"], "a string")
    with pytest.raises(TypeError):
        _kernel.syscall(1, 2, 3, 4, 5, 6, 7, 8)
    with pytest.raises(TypeError):
        _kernel.syscall()


def test_words_are_native_endian():
    assert kernel.words(1, size=4) == (1).to_bytes(4, sys.byteorder)
    assert kernel.words(-1, size=4) == b"\xff" * 4
    assert len(kernel.words(1, 2, 3)) == 24


def test_a_call_without_a_number_is_enosys_not_a_wrong_syscall(monkeypatch):
    """An architecture without a table (or a name missing from it) gets ENOSYS."""
    monkeypatch.setattr(kernel, "NR", {})
    with pytest.raises(OSError) as raised:
        kernel.call("prctl", 3)
    assert raised.value.errno == errno.ENOSYS
    assert "prctl" in str(raised.value)
