"""Raw system calls by name: the C extension `_kernel` when built, ctypes otherwise.

`call(name, *args)` returns the result or raises OSError(errno). Arguments are ints, None
(NULL) or buffers (bytes are NUL-terminated C strings; bytearray for what the kernel writes).
The C extension exists because loading ctypes costs ~3-4 ms on every create, run and exec;
the ctypes path keeps a source checkout that was never built working, at that cost.
"""

from __future__ import annotations

import errno
import os
import sys

# syscall numbers of the calls Python's os module lacks: name -> (x86_64, aarch64)
_NUMBERS = {
    "mount": (165, 40), "umount2": (166, 39), "unshare": (272, 97), "setns": (308, 268),
    "prctl": (157, 167), "setdomainname": (171, 162), "pivot_root": (155, 41),
    "personality": (135, 92), "sched_setattr": (314, 274), "ioprio_set": (251, 30),
    "set_mempolicy": (238, 237), "capset": (126, 91), "keyctl": (250, 219), "bpf": (321, 280),
    "seccomp": (317, 277), "open_tree": (428, 428), "move_mount": (429, 429),
    "close_range": (436, 436), "openat2": (437, 437), "mount_setattr": (442, 442),
    "renameat2": (316, 276),
}
MACHINE = os.uname().machine
_COLUMN = {"x86_64": 0, "aarch64": 1}.get(MACHINE)
# another architecture gets no numbers (ENOSYS from call), never a wrong table's
NR: dict[str, int] = {} if _COLUMN is None else {
    name: numbers[_COLUMN] for name, numbers in _NUMBERS.items()}

try:
    from ociruntime.linux._kernel import address, syscall
except ImportError:  # not built: the same two functions over ctypes
    from ociruntime.linux._kernel_ctypes import address, syscall

BACKEND = "c" if syscall.__module__ == "ociruntime.linux._kernel" else "ctypes"


def call(name: str, *args: int | bytes | bytearray | None) -> int:
    """The system call `name`; its result, or OSError(errno)."""
    try:
        number = NR[name]
    except KeyError:
        raise OSError(errno.ENOSYS, f"{name}: no system call number known for {MACHINE}"
                      ) from None
    return syscall(number, *args)


def words(*values: int, size: int = 8) -> bytes:
    """Native-endian unsigned words: the bytes of a C struct made only of them."""
    return b"".join((v & ((1 << (8 * size)) - 1)).to_bytes(size, sys.byteorder)
                    for v in values)


__all__ = ["BACKEND", "NR", "address", "call", "syscall", "words"]
