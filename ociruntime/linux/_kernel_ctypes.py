"""The `_kernel` extension's two functions over ctypes, for a checkout where it is not built.

Same contract: `syscall(number, *args)` takes ints, None or buffers and raises OSError(errno)
on -1; `address(buffer)` is the address of a buffer's first byte.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def address(buffer: bytes | bytearray | memoryview) -> int:
    """The address of the buffer's first byte (the caller keeps the buffer alive)."""
    if isinstance(buffer, bytes):
        return ctypes.cast(ctypes.c_char_p(buffer), ctypes.c_void_p).value or 0
    view = memoryview(buffer)
    return ctypes.addressof((ctypes.c_char * view.nbytes).from_buffer(view))


def _word(arg: object) -> object:
    if arg is None:
        return None
    if isinstance(arg, int):
        return ctypes.c_ulong(arg & 0xFFFFFFFFFFFFFFFF)
    if isinstance(arg, bytes):
        return ctypes.c_char_p(arg)
    return ctypes.c_void_p(address(arg))  # type: ignore[arg-type]


def syscall(number: int, *args: object) -> int:
    """A raw system call; OSError(errno) when it returns -1."""
    if len(args) > 6:
        raise TypeError("syscall(number, *args) takes 1 to 7 arguments")
    result = _libc.syscall(ctypes.c_long(number), *(_word(a) for a in args))
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result
