"""OCI image layout pieces: digests, descriptors, and writing a layout as a directory or a tar.

    manifest, blobs = image_blobs(config, [layer_tar_bytes])
    write_layout(Path("img.tar"), blobs, [dict(manifest, annotations=name_annotations(NAME))])
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
from pathlib import Path

from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
NAME_KEY = "io.containerd.image.name"  # the full reference (containerd, podman, docker 25)
REF_KEY = "org.opencontainers.image.ref.name"  # the OCI spec's: often only the tag
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def sha256(data: bytes) -> str:
    """The OCI digest of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: object, where: str) -> str:
    """`digest` if it is a well-formed sha256 digest (the only algorithm supported)."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise RuntimeFailure(f"{where}: unsupported or malformed digest {digest!r} "
                             "(expected sha256:<64 hex>)")
    return digest


def blob_name(digest: str) -> str:
    """The path of a blob inside a layout."""
    return "blobs/sha256/" + digest.split(":", 1)[1]


def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    """A content descriptor for `data`."""
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}


def encode(doc: dict[str, Any]) -> bytes:
    """Canonical JSON bytes for a config, manifest or index blob."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def name_annotations(name: str) -> dict[str, str]:
    """Index annotations naming an image: the full name, and the tag as the OCI ref name."""
    return {NAME_KEY: name, REF_KEY: name.rpartition(":")[2]}


def image_blobs(config: dict[str, Any], layers: list[bytes], compress: bool = False
                ) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest descriptor and every blob (layers, config, manifest) of one image made of
    the layer tars `layers` (stored gzipped with `compress`); `config.rootfs.diff_ids` is
    filled in here."""
    config = dict(config, rootfs={"type": "layers", "diff_ids": [sha256(x) for x in layers]})
    if compress:
        layers = [gzip.compress(x, mtime=0) for x in layers]
    blobs: dict[str, bytes] = {sha256(x): x for x in layers}
    raw_config = encode(config)
    blobs[sha256(raw_config)] = raw_config
    media = OCI_LAYER_GZIP if compress else OCI_LAYER
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, raw_config),
                "layers": [descriptor(media, x) for x in layers]}
    raw_manifest = encode(manifest)
    blobs[sha256(raw_manifest)] = raw_manifest
    return descriptor(OCI_MANIFEST, raw_manifest), blobs


def write_layout(dest: Path, blobs: Mapping[str, bytes | Path], manifests: list[dict[str, Any]],
                 archive: bool = True) -> Path:
    """Write an OCI image layout holding `blobs` (digest -> bytes or a file) with `manifests`
    (descriptors, annotations naming them) in index.json: a tar at `dest`, or a directory."""
    index = encode({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    files: list[tuple[str, bytes | Path]] = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                                             ("index.json", index)]
    files += [(blob_name(d), b) for d, b in sorted(blobs.items())]
    if not archive:
        for name, content in files:
            path = dest / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.read_bytes())
        return dest
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, content in files:
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            if isinstance(content, bytes):
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                info.size = os.stat(content).st_size
                with open(content, "rb") as f:
                    tar.addfile(info, f)
    return dest
