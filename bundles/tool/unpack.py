"""Unpack one image layer (a tar, maybe gzipped) into its own directory, as overlayfs wants it.

OCI whiteouts become overlayfs ones: `.wh.NAME` a 0/0 character device NAME, `.wh..wh..opq`
the trusted.overlay.opaque=y xattr on its directory (a whiteout never hides an entry of its own
layer). Names are checked before anything is written: no absolute names, no `..`, nothing
written through a symlink (a layer's symlinks are created, never followed, so an absolute target
cannot reach the host), hard links only to entries of the same layer. Ownership, modes, mtimes,
device nodes and xattrs are kept, except trusted.overlay.* xattrs, which would steer overlayfs.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile

from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
OVERLAY_XATTRS = "trusted.overlay."
PAX_XATTR = "SCHILY.xattr."


class LayerError(RuntimeFailure):
    """A layer that is malformed or tries to write outside its directory."""


def clean_name(name: str, where: str) -> str:
    """A tar entry name as a relative path without `.` parts ("" is the layer's root)."""
    if name.startswith("/"):
        raise LayerError(f"{where}: entry {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"{where}: entry {name!r}: path traversal (..)")
    return "/".join(parts)


class _Hashing:
    """A read-only stream that hashes (sha256) everything read through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hash.update(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return "sha256:" + self.hash.hexdigest()


def decompressed(f: BinaryIO, where: str) -> BinaryIO:
    """`f` (a seekable blob) as an uncompressed tar stream: gzip is undone, zstd refused."""
    magic = f.read(4)
    f.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if magic == b"\x28\xb5\x2f\xfd":
        raise LayerError(f"{where}: zstd-compressed layers are not supported")
    return f


class Unpacker:
    """Writes the entries of one layer into `dest` (an empty directory)."""

    def __init__(self, dest: str, where: str) -> None:
        self.dest = dest
        self.where = where
        self.dirs: set[str] = {""}  # relative paths known to be real directories of the layer
        self.dir_times: dict[str, float] = {}

    def _abs(self, rel: str) -> str:
        return os.path.join(self.dest, rel) if rel else self.dest

    def _fail(self, name: str, why: str) -> LayerError:
        return LayerError(f"{self.where}: entry {name!r}: {why}")

    def _ensure_dir(self, rel: str, name: str) -> None:
        """Make every component of `rel` a real directory (missing ones 0755), refusing to
        go through a symlink or a file."""
        if rel in self.dirs:
            return
        cur = ""
        for part in rel.split("/"):
            cur = f"{cur}/{part}" if cur else part
            if cur in self.dirs:
                continue
            try:
                st = os.lstat(self._abs(cur))
            except FileNotFoundError:
                os.mkdir(self._abs(cur), 0o755)
            else:
                if stat.S_ISLNK(st.st_mode):
                    raise self._fail(name, f"goes through the symlink {cur!r}")
                if not stat.S_ISDIR(st.st_mode):
                    raise self._fail(name, f"goes through {cur!r}, which is not a directory")
            self.dirs.add(cur)

    def _clear(self, rel: str, keep_dir: bool) -> bool:
        """Remove what is at `rel` (an earlier entry of this layer); True if a directory was
        kept."""
        path = self._abs(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(path)
            self.dirs = {d for d in self.dirs if d != rel and not d.startswith(rel + "/")}
        else:
            os.unlink(path)
        return False

    def entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        """Write one tar entry."""
        rel = clean_name(member.name, self.where)
        if not rel:
            return  # the layer's root: the container's / takes its attributes from upper
        parent, base = posixpath.split(rel)
        self._ensure_dir(parent, member.name)
        if base == OPAQUE:
            os.setxattr(self._abs(parent), OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT + WHITEOUT):
            return  # other AUFS metadata (.wh..wh.plnk ...): nothing for overlayfs
        if base.startswith(WHITEOUT):
            hidden = base[len(WHITEOUT):]
            if hidden in ("", ".", ".."):
                raise self._fail(member.name, "whiteout of nothing")
            target = self._abs(posixpath.join(parent, hidden))
            if not os.path.lexists(target):  # an entry of this same layer stays visible
                os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            return
        path = self._abs(rel)
        if member.isdir():
            if not self._clear(rel, keep_dir=True):
                os.mkdir(path, 0o700)
            self.dirs.add(rel)
            self.dir_times[rel] = member.mtime
        else:
            self._clear(rel, keep_dir=False)
            if member.islnk():
                self._hardlink(member, path)
                return
            self._create(tar, member, path)
        self._attributes(member, path)

    def _hardlink(self, member: tarfile.TarInfo, path: str) -> None:
        target = clean_name(member.linkname, self.where)
        st = None
        if posixpath.dirname(target) in self.dirs:
            try:
                st = os.lstat(self._abs(target))
            except FileNotFoundError:
                pass
        if st is None or stat.S_ISDIR(st.st_mode):
            raise self._fail(member.name, f"hard link to {member.linkname!r}, which is not an "
                             "earlier file of this layer")
        os.link(self._abs(target), path, follow_symlinks=False)

    def _create(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
        if member.isreg():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                src = tar.extractfile(member)
                assert src is not None
                shutil.copyfileobj(src, out, 1 << 20)
        elif member.issym():
            os.symlink(member.linkname, path)
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        elif member.isfifo():
            os.mkfifo(path, 0o600)
        else:
            raise self._fail(member.name, f"unsupported entry type {member.type!r}")

    def _attributes(self, member: tarfile.TarInfo, path: str) -> None:
        os.chown(path, member.uid, member.gid, follow_symlinks=False)
        if not member.issym():
            os.chmod(path, member.mode & 0o7777)  # after chown, which clears setuid bits
        for key, value in member.pax_headers.items():
            if key.startswith(PAX_XATTR) and not key[len(PAX_XATTR):].startswith(OVERLAY_XATTRS):
                os.setxattr(path, key[len(PAX_XATTR):], value.encode("utf-8", "surrogateescape"),
                            follow_symlinks=False)
        if not member.isdir():
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    def finish(self) -> None:
        """Set directory mtimes last (writing their entries changed them), deepest first."""
        for rel in sorted(self.dir_times, key=lambda r: r.count("/"), reverse=True):
            if rel in self.dirs:
                mtime = self.dir_times[rel]
                os.utime(self._abs(rel), (mtime, mtime), follow_symlinks=False)


def layer_diff_id(blob: str, where: str) -> str:
    """The diff ID of the layer blob at `blob` (without unpacking it)."""
    with open(blob, "rb") as f:
        try:
            return _Hashing(decompressed(f, where)).drain()
        except (EOFError, OSError) as e:
            raise LayerError(f"{where}: not a valid layer: {e}") from None


def unpack_layer(blob: str, dest: str, where: str) -> str:
    """Unpack the layer blob at `blob` into the empty directory `dest`; return its diff ID
    (the sha256 of the uncompressed tar)."""
    with open(blob, "rb") as f:
        stream = _Hashing(decompressed(f, where))
        unpacker = Unpacker(dest, where)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    unpacker.entry(tar, member)
            return_digest = stream.drain()
        except (tarfile.TarError, EOFError, gzip.BadGzipFile) as e:
            raise LayerError(f"{where}: not a valid layer tar: {e}") from None
        except OSError as e:
            raise LayerError(f"{where}: unpacking: {e}") from None
    unpacker.finish()
    return return_digest
