"""Raw system calls by name: the C extension `_kernel` when built, ctypes otherwise.

`call(name, *args)` returns the result or raises OSError(errno). Arguments are ints, None
(NULL) or buffers (bytes are NUL-terminated C strings; bytearray for what the kernel writes).
The C extension exists because loading ctypes costs ~3-4 ms on every create, run and exec;
the ctypes path keeps a source checkout that was never built working, at that cost.
"""

from __future__ import annotations

import os
import sys

# syscall numbers of the calls Python's os module lacks (x86_64; aarch64 uses the generic table)
_NUMBERS = {
    "x86_64": {
        "mount": 165, "umount2": 166, "unshare": 272, "setns": 308, "prctl": 157,
        "setdomainname": 171, "pivot_root": 155, "personality": 135, "sched_setattr": 314,
        "ioprio_set": 251, "set_mempolicy": 238, "capset": 126, "keyctl": 250, "bpf": 321,
        "seccomp": 317, "open_tree": 428, "move_mount": 429, "close_range": 436,
        "openat2": 437, "mount_setattr": 442, "renameat2": 316,
    },
    "aarch64": {
        "mount": 40, "umount2": 39, "unshare": 97, "setns": 268, "prctl": 167,
        "setdomainname": 162, "pivot_root": 41, "personality": 92, "sched_setattr": 274,
        "ioprio_set": 30, "set_mempolicy": 237, "capset": 91, "keyctl": 219, "bpf": 280,
        "seccomp": 277, "open_tree": 428, "move_mount": 429, "close_range": 436,
        "openat2": 437, "mount_setattr": 442, "renameat2": 276,
    },
}
NR: dict[str, int] = _NUMBERS.get(os.uname().machine, _NUMBERS["x86_64"])

try:
    from ociruntime.linux._kernel import address, syscall
except ImportError:  # not built: the same two functions over ctypes
    from ociruntime.linux._kernel_ctypes import address, syscall

BACKEND = "c" if syscall.__module__ == "ociruntime.linux._kernel" else "ctypes"


def call(name: str, *args: int | bytes | bytearray | None) -> int:
    """The system call `name`; its result, or OSError(errno)."""
    return syscall(NR[name], *args)


def words(*values: int, size: int = 8) -> bytes:
    """Native-endian unsigned words: the bytes of a C struct made only of them."""
    return b"".join((v & ((1 << (8 * size)) - 1)).to_bytes(size, sys.byteorder)
                    for v in values)


__all__ = ["BACKEND", "NR", "address", "call", "syscall", "words"]
