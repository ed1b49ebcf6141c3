"""Import images: OCI image layouts (a directory or a tar, maybe gzipped) and `docker save`
archives. Every blob is checked against its digest and size, every layer's uncompressed tar
against the config's diff ID; layers are unpacked (unpack.py) bottom first into
ROOT/layers/<diff id>. A failed import leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from bundles.tool import layout
from bundles.tool.store import Store, normalize_name
from bundles.tool.unpack import clean_name
from ociruntime.errors import RuntimeFailure, SyscallError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

_MAX_JSON = 4 << 20
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


class _DirSource:
    """Files of an image layout directory (names resolved inside it, symlinks included)."""

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def open(self, name: str) -> BinaryIO:
        from ociruntime.linux.paths import open_in_root

        try:
            fd = open_in_root(self.fd, clean_name(name, self.where), os.O_RDONLY)
        except SyscallError as e:
            raise RuntimeFailure(f"{self.where}: {name}: {os.strerror(e.errno)}") from None
        return os.fdopen(fd, "rb")

    def exists(self, name: str) -> bool:
        try:
            self.open(name).close()
        except RuntimeFailure:
            return False
        return True

    def close(self) -> None:
        os.close(self.fd)


class _TarSource:
    """Members of an image archive, read in place (never extracted)."""

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        try:
            self.tar = tarfile.open(path, "r:*")
            members = self.tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise RuntimeFailure(f"{path}: not a readable tar archive: {e}") from None
        self.members: dict[str, tarfile.TarInfo] = {}
        for m in members:
            with contextlib.suppress(RuntimeFailure):
                self.members[clean_name(m.name, self.where)] = m

    def open(self, name: str) -> BinaryIO:
        member = self.members.get(clean_name(name, self.where))
        f = None
        if member is not None:
            with contextlib.suppress(KeyError, tarfile.TarError):
                f = self.tar.extractfile(member)
        if f is None:
            raise RuntimeFailure(f"{self.where}: {name}: no such file in the archive")
        return f  # type: ignore[return-value]

    def exists(self, name: str) -> bool:
        return clean_name(name, self.where) in self.members

    def close(self) -> None:
        self.tar.close()


def _read_json(source: _DirSource | _TarSource, name: str, digest: str | None = None
               ) -> tuple[bytes, dict[str, Any]]:
    with source.open(name) as f:
        raw = f.read(_MAX_JSON + 1)
    where = f"{source.where}: {name}"
    if len(raw) > _MAX_JSON:
        raise RuntimeFailure(f"{where}: larger than {_MAX_JSON} bytes")
    if digest is not None and layout.sha256(raw) != digest:
        raise RuntimeFailure(f"{where}: digest mismatch: expected {digest}, "
                             f"got {layout.sha256(raw)}")
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise RuntimeFailure(f"{where}: not JSON: {e}") from None
    if not isinstance(doc, dict | list):
        raise RuntimeFailure(f"{where}: not a JSON object")
    return raw, doc


@dataclass
class _Layer:
    name: str  # file in the source
    digest: str | None  # blob digest when the format records it
    size: int | None
    media_type: str | None


@dataclass
class _Plan:
    """One image found in the source, before anything is stored."""

    names: list[str]
    manifest_raw: bytes | None  # kept as-is (OCI) or made up (docker save)
    config_raw: bytes
    config: dict[str, Any]
    layers: list[_Layer] = field(default_factory=list)
    manifest_type: str = layout.OCI_MANIFEST


def _platform_ok(desc: dict[str, Any]) -> bool:
    plat = desc.get("platform")
    if not isinstance(plat, dict):
        return True
    return plat.get("os", "linux") == "linux" and plat.get("architecture", _ARCH) == _ARCH


def _names(annotations: object, stem: str) -> list[str]:
    if not isinstance(annotations, dict):
        return []
    full = annotations.get(layout.NAME_KEY)
    if isinstance(full, str):
        return [full]
    ref = annotations.get(layout.REF_KEY)
    if isinstance(ref, str):
        return [ref if "/" in ref or ":" in ref else f"{stem}:{ref}"]
    return []


def _oci_plans(source: _DirSource | _TarSource, stem: str) -> list[_Plan]:
    plans: list[_Plan] = []
    _, index = _read_json(source, "index.json")
    todo: list[tuple[dict[str, Any], list[str]]] = [
        (d, _names(d.get("annotations"), stem)) for d in index.get("manifests") or []]
    while todo:
        desc, names = todo.pop(0)
        if not isinstance(desc, dict) or not _platform_ok(desc):
            continue
        digest = layout.check_digest(desc.get("digest"), f"{source.where}: index")
        raw, doc = _read_json(source, layout.blob_name(digest), digest)
        media = desc.get("mediaType") or doc.get("mediaType")
        if media in layout.INDEX_TYPES:
            todo += [(d, names) for d in doc.get("manifests") or []]
            continue
        if media not in layout.MANIFEST_TYPES:
            continue  # attestations, signatures, artifacts
        where = f"{source.where}: manifest {digest}"
        try:
            config_digest = layout.check_digest(doc["config"]["digest"], where)
            layers = [_Layer(layout.blob_name(layout.check_digest(x["digest"], where)),
                             x["digest"], x.get("size"), x.get("mediaType"))
                      for x in doc["layers"]]
        except (KeyError, TypeError):
            raise RuntimeFailure(f"{where}: not an image manifest") from None
        config_raw, config = _read_json(source, layout.blob_name(config_digest), config_digest)
        plans.append(_Plan(names, raw, config_raw, config, layers, media))
    return plans


def _docker_plans(source: _DirSource | _TarSource) -> list[_Plan]:
    _, manifest = _read_json(source, "manifest.json")
    plans = []
    for entry in manifest if isinstance(manifest, list) else []:
        try:
            config_name, layer_names = entry["Config"], entry["Layers"]
            tags = entry.get("RepoTags") or []
        except (KeyError, TypeError):
            raise RuntimeFailure(f"{source.where}: manifest.json: not a docker-save manifest"
                                 ) from None
        hexpart = os.path.basename(config_name).removesuffix(".json")
        expected = f"sha256:{hexpart}" if len(hexpart) == 64 else None
        config_raw, config = _read_json(source, config_name, expected)
        layers = []
        for name in layer_names:
            base = os.path.basename(name)
            digest = (f"sha256:{base}" if name.startswith("blobs/sha256/") and len(base) == 64
                      else None)
            layers.append(_Layer(name, digest, None, None))
        plans.append(_Plan(list(tags), None, config_raw, config, layers))
    return plans


class _Importer:
    """Stores plans; remembers every blob and layer it added so a failure can remove them."""

    def __init__(self, store: Store, source: _DirSource | _TarSource) -> None:
        self.store = store
        self.source = source
        self.added: list[Path] = []
        self.index = store.read_index()

    def _blob(self, layer: _Layer) -> str:
        if layer.digest is not None and self.store.blob(layer.digest).exists():
            return layer.digest
        with self.source.open(layer.name) as f:
            digest, new = self.store.put_blob(f, f"{self.source.where}: {layer.name}",
                                              layer.digest, layer.size)
        if new:
            self.added.append(self.store.blob(digest))
        return digest

    def _unpack(self, blob: str, diff_id: str, where: str) -> None:
        if self.store.unpack(blob, diff_id, where):
            self.added.append(self.store.layer_dir(diff_id))

    def store_plan(self, plan: _Plan, names: list[str]) -> None:
        where = self.source.where
        diff_ids = (plan.config.get("rootfs") or {}).get("diff_ids")
        if not isinstance(diff_ids, list) or len(diff_ids) != len(plan.layers):
            raise RuntimeFailure(f"{where}: image config: rootfs.diff_ids does not list the "
                                 f"{len(plan.layers)} layers of the manifest")
        manifest_layers = []
        for layer, diff_id in zip(plan.layers, diff_ids, strict=True):
            layout.check_digest(diff_id, f"{where}: rootfs.diff_ids")
            blob = self._blob(layer)
            self._unpack(blob, diff_id, f"{where}: {layer.name}")
            media = layer.media_type or (layout.OCI_LAYER if blob == diff_id
                                         else layout.OCI_LAYER_GZIP)
            manifest_layers.append({"mediaType": media, "digest": blob,
                                    "size": self.store.blob(blob).stat().st_size})
        config_digest = self._bytes(plan.config_raw)
        manifest_raw = plan.manifest_raw or layout.encode({
            "schemaVersion": 2, "mediaType": layout.OCI_MANIFEST,
            "config": {"mediaType": layout.OCI_CONFIG, "digest": config_digest,
                       "size": len(plan.config_raw)},
            "layers": manifest_layers})
        manifest = {"mediaType": plan.manifest_type, "digest": self._bytes(manifest_raw),
                    "size": len(manifest_raw)}
        for name in names:
            self.store.tag(name, manifest)

    def _bytes(self, data: bytes) -> str:
        digest = layout.sha256(data)
        if not self.store.blob(digest).exists():
            self.store.put_bytes(data)
            self.added.append(self.store.blob(digest))
        return digest

    def undo(self) -> None:
        self.store.write_index(self.index)
        for path in reversed(self.added):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def _open(path: Path) -> _DirSource | _TarSource:
    if path.is_dir():
        return _DirSource(path)
    if not path.exists():
        raise RuntimeFailure(f"{path}: no such file or directory")
    return _TarSource(path)


def import_image(store: Store, path: Path, name: str | None = None) -> list[str]:
    """Import every image of the layout or archive at `path`; returns their names (`name`
    renames the only image; an image without a name in the archive needs it)."""
    source = _open(path)
    stem = path.name.split(".")[0] or "image"
    try:
        if source.exists("index.json"):
            plans = _oci_plans(source, stem)
        elif source.exists("manifest.json"):
            plans = _docker_plans(source)
        else:
            raise RuntimeFailure(f"{path}: not an OCI image layout nor a docker-save archive "
                                 "(no index.json, no manifest.json)")
        if not plans:
            raise RuntimeFailure(f"{path}: no image for linux/{_ARCH} in it")
        if name is not None and len(plans) != 1:
            raise RuntimeFailure(f"{path}: holds {len(plans)} images; --name needs exactly one")
        named = [[normalize_name(name)] if name else [normalize_name(n) for n in p.names]
                 for p in plans]
        if not all(named):
            raise RuntimeFailure(f"{path}: an image in it has no name; give one with --name")
        with store.lock():
            importer = _Importer(store, source)
            try:
                for plan, names in zip(plans, named, strict=True):
                    importer.store_plan(plan, names)
            except BaseException:
                importer.undo()
                raise
        return [n for names in named for n in names]
    finally:
        source.close()
