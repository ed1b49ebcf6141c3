"""Write a directory as a layer tar: a plain rootfs, or an overlay upper directory whose
overlayfs whiteouts become OCI ones (a 0/0 character device NAME -> `.wh.NAME`, a directory with
trusted.overlay.opaque=y -> its entry followed by `.wh..wh..opq`).

Entries are sorted, numeric owners only (no host user names), xattrs kept in PAX headers except
trusted.overlay.*, hard links kept; sockets are skipped.
"""

from __future__ import annotations

import os
import stat
import tarfile

from bundles.tool.unpack import OPAQUE, OPAQUE_XATTR, OVERLAY_XATTRS, PAX_XATTR, WHITEOUT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import BinaryIO

_XWHITEOUT = "trusted.overlay.whiteout"  # overlayfs >= 6.7 "xwhiteout": a file with this xattr


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in names}


def _is_whiteout(st: os.stat_result, xattrs: dict[str, bytes]) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    return stat.S_ISREG(st.st_mode) and _XWHITEOUT in xattrs


def _marker(tar: tarfile.TarFile, name: str, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = 0o644, mtime
    tar.addfile(info)


def _add(tar: tarfile.TarFile, path: str, arcname: str, xattrs: dict[str, bytes]) -> None:
    info = tar.gettarinfo(path, arcname)
    if info is None:
        return  # a socket
    info.uname = info.gname = ""
    for key, value in xattrs.items():
        if not key.startswith(OVERLAY_XATTRS):
            info.pax_headers[PAX_XATTR + key] = value.decode("utf-8", "surrogateescape")
    if info.isreg():
        with open(path, "rb") as f:
            tar.addfile(info, f)
    else:
        tar.addfile(info)


def pack_dir(root: Path, out: BinaryIO) -> None:
    """Write the tree below `root` (not crossing into other mounts) as a layer tar to `out`."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _pack(tar, "", str(root), os.lstat(root).st_dev)


def _pack(tar: tarfile.TarFile, rel_dir: str, abs_dir: str, root_dev: int) -> None:
    with os.scandir(abs_dir) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
        st = e.stat(follow_symlinks=False)
        xattrs = _xattrs(e.path)
        if _is_whiteout(st, xattrs):
            _marker(tar, f"{rel_dir}/{WHITEOUT}{e.name}" if rel_dir else WHITEOUT + e.name,
                    st.st_mtime)
            continue
        _add(tar, e.path, rel, xattrs)
        if stat.S_ISDIR(st.st_mode):
            if xattrs.get(OPAQUE_XATTR) == b"y":
                _marker(tar, f"{rel}/{OPAQUE}", st.st_mtime)
            if st.st_dev == root_dev:
                _pack(tar, rel, e.path, root_dev)
