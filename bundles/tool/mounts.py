"""Host-side mounts of a bundle: the overlay root, and taking everything down safely.

The overlay's lowerdirs are the image's layer directories (top layer first), upper and work
are the bundle's own. `remove_tree` refuses to delete a directory while anything is mounted
below it, so a volume bind-mounted into a rootfs can never be deleted through it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil

from ociruntime.errors import RuntimeFailure, SyscallError
from ociruntime.linux import syscalls as sc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

_PAGE = 4096  # mount(2) options must fit in one page


def _unescape(field: str) -> str:
    """A mountinfo path field (spaces, tabs, newlines and backslashes are octal escapes)."""
    if "\\" not in field:
        return field
    return os.fsdecode(field.encode().decode("unicode_escape").encode("latin-1"))


def mounts_below(path: Path) -> list[str]:
    """Mount points at or below `path` in this mount namespace, deepest first."""
    top = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _unescape(line.split()[4])
            if point == top or point.startswith(top.rstrip("/") + "/"):
                found.append(point)
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def is_mounted(path: Path) -> bool:
    """True when something is mounted exactly at `path`."""
    return os.path.realpath(path) in mounts_below(path)


def mount_overlay(layer_dirs: list[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount an overlay at `target`: `layer_dirs` (bottom first) as lowerdir, `upper`/`work`.

    The lowerdirs are given relative to their common directory (the mount runs with that as
    the working directory) so that dozens of layers fit in mount(2)'s one page of options.
    """
    for p in (upper, work, target, *layer_dirs):
        if any(c in str(p) for c in ",:\\"):
            raise RuntimeFailure(f"overlay: {p}: a path with ',', ':' or '\\' cannot be a "
                                 "layer, upper or work directory")
    base = os.path.commonpath([str(d.parent) for d in layer_dirs])
    lowers = ":".join(os.path.relpath(d, base) for d in reversed(layer_dirs))
    data = (f"lowerdir={lowers},upperdir={upper},workdir={work},"
            "index=off,redirect_dir=off,metacopy=off")
    if len(data) >= _PAGE:
        raise RuntimeFailure(f"overlay: {target}: {len(layer_dirs)} layers do not fit in the "
                             "mount options")
    cwd = os.open(".", os.O_PATH | os.O_CLOEXEC)
    try:
        os.chdir(base)
        sc.mount("overlay", str(target), "overlay", 0, data)
    finally:
        os.fchdir(cwd)
        os.close(cwd)


def unmount_all(path: Path) -> None:
    """Unmount everything at or below `path`, deepest first (volumes before the root that
    holds them); a busy mount is detached. Fails if anything is still mounted after."""
    for _ in range(8):
        points = mounts_below(path)
        if not points:
            return
        for point in points:
            try:
                sc.umount(point)
            except SyscallError as e:
                if e.errno == errno.EBUSY:  # detach it: nothing is reachable through it then
                    sc.umount(point, sc.MNT_DETACH)
                elif e.errno != errno.EINVAL:  # EINVAL: gone already (with its parent)
                    raise
    if points := mounts_below(path):
        raise RuntimeFailure(f"{path}: still mounted after unmounting: {', '.join(points)}")


def remove_tree(path: Path) -> None:
    """Delete `path` recursively, refusing while anything is mounted at or below it."""
    if points := mounts_below(path):
        raise RuntimeFailure(f"{path}: not removed: mounted below it: {', '.join(points)}")
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
