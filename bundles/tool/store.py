"""The tool's state directory: an OCI image layout (blobs, index.json naming the images), one
unpacked directory per layer, the containers' bundles, the runtime's state root, network leases.

    ROOT/oci-layout, ROOT/index.json, ROOT/blobs/sha256/<hex>   images (OCI image layout)
    ROOT/layers/<diff-id hex>/                                   unpacked layers (overlay lowers)
    ROOT/containers/<name>/                                      bundles (see containers.py)
    ROOT/run/                                                    pyrunc --root
    ROOT/net/                                                    bridge leases (see ipam.py)
    ROOT/tmp/                                                    work in progress

ROOT is --root, else $PYRUNC_BUNDLE_ROOT, else /var/lib/pyrunc-bundle. Commands that change the
store hold ROOT/lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bundles.tool import layout
from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, BinaryIO

DEFAULT_ROOT = "/var/lib/pyrunc-bundle"
ROOT_ENV = "PYRUNC_BUNDLE_ROOT"
_NAME = re.compile(r"([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9][a-z0-9._/-]*"
                   r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?")


def normalize_name(name: str) -> str:
    """An image name with its tag (`:latest` when none is given)."""
    if len(name) > 255 or not _NAME.fullmatch(name) or "//" in name:
        raise RuntimeFailure(f"image name {name!r}: use [HOST[:PORT]/]lowercase[a-z0-9._/-] "
                             "and an optional :TAG")
    return name if ":" in name.rpartition("/")[2] else name + ":latest"


@dataclass
class Image:
    """One named image of the store."""

    name: str
    manifest_digest: str
    manifest: dict[str, Any]
    config_digest: str
    config: dict[str, Any]

    @property
    def id(self) -> str:
        """The short image ID: the config digest's first 12 hex digits (docker's)."""
        return self.config_digest.split(":", 1)[1][:12]

    @property
    def diff_ids(self) -> list[str]:
        """The layers' uncompressed digests, bottom first."""
        return list(self.config["rootfs"]["diff_ids"])


class Store:
    """The state directory and its images."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root or os.environ.get(ROOT_ENV) or DEFAULT_ROOT).absolute()
        self.blobs = self.root / "blobs" / "sha256"
        self.layers = self.root / "layers"
        self.containers = self.root / "containers"
        self.run = self.root / "run"
        self.net = self.root / "net"
        self.tmp = self.root / "tmp"

    def init(self) -> Store:
        """Create the directories (idempotent)."""
        for d in (self.blobs, self.layers, self.containers, self.run, self.net, self.tmp):
            d.mkdir(mode=0o711, parents=True, exist_ok=True)
        marker = self.root / "oci-layout"
        if not marker.exists():
            marker.write_text('{"imageLayoutVersion":"1.0.0"}')
        return self

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's lock (one changing command at a time)."""
        self.init()
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # blobs

    def blob(self, digest: str) -> Path:
        """The file of a blob (it may not exist)."""
        return self.blobs / layout.check_digest(digest, "blob").split(":", 1)[1]

    def put_blob(self, src: BinaryIO, where: str, digest: str | None = None,
                 size: int | None = None) -> tuple[str, bool]:
        """Copy a stream into the blob store, checking its digest and size when given;
        returns its digest and whether the blob is new."""
        h = hashlib.sha256()
        count = 0
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                    count += len(chunk)
                    out.write(chunk)
            got = "sha256:" + h.hexdigest()
            if digest is not None and got != digest:
                raise RuntimeFailure(f"{where}: digest mismatch: expected {digest}, got {got}")
            if size is not None and count != size:
                raise RuntimeFailure(f"{where}: size mismatch: expected {size}, got {count}")
            if self.blob(got).exists():
                return got, False
            os.rename(tmp, self.blob(got))
            return got, True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def put_bytes(self, data: bytes) -> str:
        """Store `data` as a blob; returns its digest."""
        digest = layout.sha256(data)
        path = self.blob(digest)
        if not path.exists():
            tmp = self.tmp / f"blob-{os.getpid()}"
            tmp.write_bytes(data)
            os.rename(tmp, path)
        return digest

    def read_json(self, digest: str) -> dict[str, Any]:
        """A JSON blob (written by this store, already verified)."""
        return json.loads(self.blob(digest).read_bytes())

    def layer_dir(self, diff_id: str) -> Path:
        """The unpacked directory of a layer (it may not exist)."""
        return self.layers / layout.check_digest(diff_id, "layer").split(":", 1)[1]

    def unpack(self, blob: str, diff_id: str, where: str) -> bool:
        """Unpack a stored layer blob into its layer directory unless it is there; its
        uncompressed digest must be `diff_id` (checked even when the directory exists). True
        when the directory is new."""
        from bundles.tool.unpack import layer_diff_id, unpack_layer

        dest = self.layer_dir(diff_id)
        work = None if dest.is_dir() else Path(tempfile.mkdtemp(dir=self.tmp, prefix="layer-"))
        try:
            if work is None:
                got = diff_id if blob == diff_id else layer_diff_id(str(self.blob(blob)), where)
            else:
                got = unpack_layer(str(self.blob(blob)), str(work), where)
            if got != diff_id:
                raise RuntimeFailure(f"{where}: diff ID mismatch: the config says {diff_id}, "
                                     f"the layer is {got}")
            if work is None:
                return False
            os.chmod(work, 0o755)
            os.rename(work, dest)
        finally:
            if work is not None and work.exists():
                shutil.rmtree(work)
        return True

    # images

    def read_index(self) -> dict[str, Any]:
        """index.json (an empty index when there is none yet)."""
        try:
            return json.loads((self.root / "index.json").read_text())
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": layout.OCI_INDEX, "manifests": []}

    def write_index(self, index: dict[str, Any]) -> None:
        """Replace index.json atomically."""
        tmp = self.root / f"index.json.{os.getpid()}"
        tmp.write_text(json.dumps(index, indent=1) + "\n")
        os.rename(tmp, self.root / "index.json")

    def images(self) -> list[Image]:
        """Every named image, sorted by name."""
        found = []
        for desc in self.read_index()["manifests"]:
            manifest = self.read_json(desc["digest"])
            config_digest = manifest["config"]["digest"]
            found.append(Image(desc["annotations"][layout.NAME_KEY], desc["digest"], manifest,
                               config_digest, self.read_json(config_digest)))
        return sorted(found, key=lambda i: i.name)

    def image(self, ref: str) -> Image:
        """An image by name (`:latest` implied) or by a prefix (4+ hex digits) of its ID."""
        images = self.images()
        with contextlib.suppress(RuntimeFailure):
            name = normalize_name(ref)
            for image in images:
                if image.name == name:
                    return image
        if re.fullmatch(r"(sha256:)?[0-9a-f]{4,64}", ref):
            hexid = ref.removeprefix("sha256:")
            ids = {i.config_digest for i in images if i.config_digest[7:].startswith(hexid)}
            if len(ids) == 1:
                return next(i for i in images if i.config_digest in ids)
        raise RuntimeFailure(f"image {ref!r}: no such image in {self.root} (see `images`)")

    def tag(self, name: str, manifest: dict[str, Any]) -> None:
        """Name the image whose manifest descriptor is `manifest` (replacing that name)."""
        index = self.read_index()
        desc = {k: manifest[k] for k in ("mediaType", "digest", "size")}
        desc["annotations"] = layout.name_annotations(name)
        index["manifests"] = [d for d in index["manifests"]
                              if d["annotations"][layout.NAME_KEY] != name] + [desc]
        self.write_index(index)

    def untag(self, name: str) -> None:
        """Forget one image name."""
        index = self.read_index()
        index["manifests"] = [d for d in index["manifests"]
                              if d["annotations"][layout.NAME_KEY] != name]
        self.write_index(index)

    def remove_unused(self, keep: set[str]) -> None:
        """Delete the blobs and layer directories that neither a named image nor `keep` (the
        digests and diff IDs containers use) refers to."""
        used = set(keep)
        for image in self.images():
            used |= {image.manifest_digest, image.config_digest, *image.diff_ids}
            used |= {d["digest"] for d in image.manifest["layers"]}
        for path in self.blobs.iterdir():
            if "sha256:" + path.name not in used:
                path.unlink()
        for path in self.layers.iterdir():
            if "sha256:" + path.name not in used:
                shutil.rmtree(path)
