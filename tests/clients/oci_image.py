"""Build an OCI image-layout archive of the busybox rootfs (no registry is reachable here)."""

from __future__ import annotations

import io
from pathlib import Path

from bundles.busybox import cached_rootfs
from bundles.tool.layout import image_blobs, name_annotations, write_layout
from bundles.tool.pack import pack_dir

IMAGE_NAME = "localhost/pyrunc/busybox:latest"
IMAGE_CONFIG = {
    "architecture": "amd64", "os": "linux",
    "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                      "/usr/bin:/sbin:/bin"], "WorkingDir": "/"},
}


def busybox_layer() -> bytes:
    """The busybox rootfs as one uncompressed layer tar."""
    buf = io.BytesIO()
    pack_dir(cached_rootfs(), buf)
    return buf.getvalue()


def build_image_archive(dest: Path, name: str = IMAGE_NAME) -> Path:
    """Write an OCI image layout tar for `ctr image import` / `podman load`."""
    manifest, blobs = image_blobs(IMAGE_CONFIG, [busybox_layer()])
    return write_layout(dest, blobs, [dict(manifest, annotations=name_annotations(name))])
