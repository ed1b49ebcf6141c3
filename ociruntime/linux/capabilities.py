"""Apply process.capabilities: bounding set, then (after the uid switch) the other sets.

Raw prctl(2)/capset(2) (syscalls.py, through the _kernel extension), not python-prctl, measured
here: importing prctl costs ~1.9 ms on every create/exec, its set_caps takes ~52 us against
~6 us for one capset(2) through ctypes (less through _kernel), it has no PR_CAP_AMBIENT (ambient
would need raw calls regardless), and it only knows the capabilities of the libcap headers it
was built against (a number above that is rejected even when the kernel has it). python-prctl
stays as the independent reader in the unit tests.
"""

from __future__ import annotations

import errno

from ociruntime.config.known import CAPABILITIES, last_cap
from ociruntime.errors import SyscallError
from ociruntime.linux import syscalls as sc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _mask(names: list[str] | None, top: int) -> int:
    mask = 0
    for name in names or ():
        number = CAPABILITIES.get(name)
        if number is not None and number <= top:
            mask |= 1 << number
    return mask


def unknown_to_kernel(caps: dict[str, Any] | None, top: int) -> list[str]:
    """`kind: NAME` for every configured capability above the kernel's last one (skipped)."""
    return [f"{kind}: {name}" for kind, names in (caps or {}).items() for name in names or ()
            if CAPABILITIES.get(name, -1) > top]


class CapabilitySets:
    """The five sets of `process.capabilities` as bit masks (unknown-to-kernel caps dropped)."""

    def __init__(self, caps: dict[str, Any] | None) -> None:
        top = last_cap()
        self.top = top
        caps = caps or {}
        self.configured = bool(caps) or caps == {}
        self.bounding = _mask(caps.get("bounding"), top)
        self.effective = _mask(caps.get("effective"), top)
        self.permitted = _mask(caps.get("permitted"), top)
        self.inheritable = _mask(caps.get("inheritable"), top)
        self.ambient = _mask(caps.get("ambient"), top)

    def drop_bounding(self) -> None:
        """Drop every capability not in the bounding set (needs CAP_SETPCAP, so do it first)."""
        for cap in range(self.top + 1):
            if not self.bounding & (1 << cap):
                try:
                    sc.prctl(sc.PR_CAPBSET_DROP, cap)
                except SyscallError as e:
                    if e.errno != errno.EINVAL:
                        raise

    def apply(self) -> None:
        """Set effective/permitted/inheritable, then raise the ambient caps (like runc)."""
        sc.capset(self.effective, self.permitted, self.inheritable)
        sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
        for cap in range(self.top + 1):
            if self.ambient & (1 << cap):
                try:
                    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, cap)
                except SyscallError as e:
                    # not in permitted+inheritable: the kernel refuses; runc ignores it too
                    if e.errno != errno.EPERM:
                        raise
