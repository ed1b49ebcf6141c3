"""The image's `User` (`name`, `uid`, `name:group`, `uid:gid`) as a process.user, looked up in
the container's own /etc/passwd and /etc/group (read inside its rootfs: symlinks there cannot
lead to the host's files)."""

from __future__ import annotations

import os

from ociruntime.errors import RuntimeFailure, SyscallError
from ociruntime.linux.paths import open_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any


def _table(rootfs: Path, name: str) -> list[list[str]]:
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_in_root(root, f"/etc/{name}", os.O_RDONLY)
    except SyscallError:
        return []
    finally:
        os.close(root)
    with os.fdopen(fd, "rb") as f:
        text = f.read(1 << 20).decode(errors="replace")
    return [line.split(":") for line in text.splitlines() if line.count(":") >= 2]


def _number(text: str, rows: list[list[str]], what: str, spec: str) -> int:
    if text.isdigit():
        return int(text)
    for row in rows:
        if row[0] == text and row[2].isdigit():
            return int(row[2])
    raise RuntimeFailure(f"user {spec!r}: no {what} {text!r} in the image's /etc/{what}")


def resolve_user(spec: str | None, rootfs: Path) -> dict[str, Any]:
    """process.user for `spec` (root when empty): uid, gid, and the user's other groups."""
    if not spec:
        return {"uid": 0, "gid": 0}
    user, _, group = spec.partition(":")
    passwd = _table(rootfs, "passwd")
    uid = _number(user, passwd, "passwd", spec)
    row = next((r for r in passwd if r[0] == user or (user.isdigit() and r[2] == user)), None)
    if group:
        gid = _number(group, _table(rootfs, "group"), "group", spec)
    else:
        gid = int(row[3]) if row and len(row) > 3 and row[3].isdigit() else 0
    result: dict[str, Any] = {"uid": uid, "gid": gid}
    if row is not None and not group:
        extra = sorted({int(g[2]) for g in _table(rootfs, "group") if len(g) > 3
                        and g[2].isdigit() and row[0] in g[3].split(",") and int(g[2]) != gid})
        if extra:
            result["additionalGids"] = extra
    return result
