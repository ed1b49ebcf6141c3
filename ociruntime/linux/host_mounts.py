"""Mounts a container without its own mount namespace leaves in the runtime's.

Such a container inherits the runtime's mount namespace (config-linux.md#namespaces), so the
config's mounts under its rootfs are made there, visible on the host. `create` notes which
mount points appeared under the rootfs while the init built it; `delete` (or a failed create)
detaches exactly those, deepest last-made first, and nothing that was mounted before.
"""

from __future__ import annotations

import errno

from ociruntime.errors import SyscallError
from ociruntime.linux import syscalls as sc

UMOUNT_NOFOLLOW = 8


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040 ...)."""
    if "\\" not in field:
        return field
    out, i = bytearray(), 0
    raw = field.encode()
    while i < len(raw):
        if raw[i] == 0x5C and raw[i + 1:i + 4].isdigit() and len(raw[i + 1:i + 4]) == 3:
            out.append(int(raw[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode(errors="surrogateescape")


def mounts_under(top: str, mountinfo: str | None = None) -> dict[int, str]:
    """Mount id -> mount point, for the mounts at or below `top` in our mount namespace."""
    if mountinfo is None:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
    top = top.rstrip("/") or "/"
    prefix = top if top == "/" else top + "/"
    found = {}
    for line in mountinfo.splitlines():
        fields = line.split(" ", 5)
        if len(fields) < 5:
            continue
        point = _unescape(fields[4])
        if point == top or point.startswith(prefix):
            found[int(fields[0])] = point
    return found


def made_since(before: dict[int, str], top: str) -> list[str]:
    """Mount points below `top` that were not there in `before`, in the order they were made."""
    now = mounts_under(top)
    return [now[i] for i in sorted(now) if i not in before]


def release(points: list[str]) -> None:
    """Detach the given mount points, last made first; those already gone are skipped."""
    current = set(mounts_under("/").values())
    for point in reversed(points):
        if point not in current:
            continue
        try:
            sc.umount(point, sc.MNT_DETACH | UMOUNT_NOFOLLOW)
        except SyscallError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):
                raise
