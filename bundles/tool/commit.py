"""`commit NAME IMAGE`: the container's upper directory becomes a new layer (overlayfs
whiteouts converted back to OCI ones, pack.py) on top of its image's layers, and a new image.
A running container is paused while its upper directory is read.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import time

from bundles.tool import layout
from bundles.tool.containers import Container
from bundles.tool.pack import pack_dir
from bundles.tool.store import normalize_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def _paused(c: Container) -> Iterator[None]:
    rt = c.runtime()
    running = rt.status(c.bundle, c.name) == "running"
    if running:
        rt.call(c.bundle, "pause", c.name)
    try:
        yield
    finally:
        if running:
            rt.call(c.bundle, "resume", c.name)


def commit(c: Container, name: str) -> str:
    """Write the new layer and image; returns the image's name."""
    name = normalize_name(name)
    store = c.store
    meta = c.meta
    with store.lock():
        fd, tmp = tempfile.mkstemp(dir=store.tmp, prefix="commit-")
        try:
            with _paused(c), os.fdopen(fd, "wb") as out:
                pack_dir(c.upper, out)
            with open(tmp, "rb") as f:
                diff_id, _ = store.put_blob(f, f"commit {c.name}")
        finally:
            os.unlink(tmp)
        store.unpack(diff_id, diff_id, f"commit {c.name}")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        config = copy.deepcopy(store.read_json(meta["config"]))
        config["created"] = now
        config["rootfs"]["diff_ids"].append(diff_id)
        config.setdefault("history", []).append(
            {"created": now, "created_by": f"pyrunc-bundle commit {c.name}"})
        raw_config = layout.encode(config)
        manifest = copy.deepcopy(store.read_json(meta["manifest"]))
        manifest["mediaType"] = layout.OCI_MANIFEST
        manifest["config"] = layout.descriptor(layout.OCI_CONFIG, raw_config)
        manifest["layers"].append({"mediaType": layout.OCI_LAYER, "digest": diff_id,
                                   "size": store.blob(diff_id).stat().st_size})
        raw_manifest = layout.encode(manifest)
        store.put_bytes(raw_config)
        store.put_bytes(raw_manifest)
        store.tag(name, layout.descriptor(layout.OCI_MANIFEST, raw_manifest))
    return name
