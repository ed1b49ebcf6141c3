"""Containers: bundles made from images, run by the OCI runtime.

    ROOT/containers/NAME/config.json   the OCI config (spec.py)
    ROOT/containers/NAME/meta.json     image, layers, volumes, network
    ROOT/containers/NAME/rootfs/       the overlay: image layers (lower), upper, work
    ROOT/containers/NAME/upper/ work/  the container's changes
    ROOT/containers/NAME/container.log its stdout and stderr
    ROOT/containers/NAME/runtime.log   the runtime's --log
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import time
from dataclasses import asdict
from pathlib import Path

from bundles.tool import mounts
from bundles.tool.runtime import Runtime
from bundles.tool.spec import Options, build_config
from bundles.tool.store import Store
from bundles.tool.users import resolve_user
from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


class Container:
    """One container's bundle."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self.bundle = store.containers / name
        self.rootfs = self.bundle / "rootfs"
        self.upper = self.bundle / "upper"
        self.work = self.bundle / "work"
        self.log = self.bundle / "container.log"

    @classmethod
    def load(cls, store: Store, name: str) -> Container:
        """An existing container."""
        if not _NAME.fullmatch(name) or not (store.containers / name / "meta.json").is_file():
            raise RuntimeFailure(f"container {name!r}: no such container in {store.root}")
        return cls(store, name)

    @property
    def meta(self) -> dict[str, Any]:
        return json.loads((self.bundle / "meta.json").read_text())

    def runtime(self) -> Runtime:
        return Runtime(self.store.run)

    def layer_dirs(self) -> list[Path]:
        dirs = [self.store.layer_dir(d) for d in self.meta["layers"]]
        for d in dirs:
            if not d.is_dir():
                raise RuntimeFailure(f"container {self.name}: layer {d} is missing")
        return dirs

    def mount_root(self) -> None:
        """Mount the overlay root unless it is mounted already (e.g. after a reboot)."""
        if not mounts.is_mounted(self.rootfs):
            mounts.mount_overlay(self.layer_dirs(), self.upper, self.work, self.rootfs)


def create(store: Store, image_ref: str, opts: Options) -> Container:
    """Make the bundle of a new container of `image_ref` and mount its root."""
    with store.lock():
        image = store.image(image_ref)
        if not image.diff_ids:
            raise RuntimeFailure(f"image {image.name}: has no layers")
        opts.name = opts.name or f"c{secrets.token_hex(5)}"
        if not _NAME.fullmatch(opts.name):
            raise RuntimeFailure(f"--name {opts.name!r}: use [A-Za-z0-9_.-], at most 63, "
                                 "starting with a letter or digit")
        c = Container(store, opts.name)
        try:
            c.bundle.mkdir()
        except FileExistsError:
            raise RuntimeFailure(f"container {opts.name}: already exists") from None
        made_dirs: list[str] = []  # volume directories made here, deepest first
        try:
            for d in (c.rootfs, c.upper, c.work):
                d.mkdir(mode=0o755)
            for v in opts.volumes:
                missing = []
                path = v.host
                while not os.path.exists(path):
                    missing.append(path)
                    path = os.path.dirname(path)
                os.makedirs(v.host, mode=0o755, exist_ok=True)
                made_dirs += missing
            meta = {"name": c.name, "image": image.name, "manifest": image.manifest_digest,
                    "config": image.config_digest, "layers": image.diff_ids,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "options": asdict(opts)}
            (c.bundle / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
            c.mount_root()
            user = resolve_user(opts.user or image.config.get("config", {}).get("User"),
                                c.rootfs)
            config = build_config(image.config, opts, user, str(store.root))
            (c.bundle / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        except BaseException:
            mounts.unmount_all(c.bundle)
            mounts.remove_tree(c.bundle)
            for d in made_dirs:
                with contextlib.suppress(OSError):
                    os.rmdir(d)
            raise
    return c


def start(c: Container) -> None:
    """Run the container detached (again, if it ran before: its changes are kept)."""
    rt = c.runtime()
    with c.store.lock():
        status = rt.status(c.bundle, c.name)
        if status not in ("stopped", "exited"):
            raise RuntimeFailure(f"container {c.name}: is {status}")
        if status == "stopped":
            rt.call(c.bundle, "delete", c.name)
        c.mount_root()
        rt.run_detached(c.bundle, c.name, c.log)


def stop(c: Container, seconds: float = 10) -> None:
    """SIGTERM, then SIGKILL after `seconds`."""
    rt = c.runtime()
    status = rt.status(c.bundle, c.name)
    if status in ("stopped", "exited"):
        return
    if status == "paused":
        rt.call(c.bundle, "resume", c.name)
    rt.call(c.bundle, "kill", c.name, str(int(signal.SIGTERM)), check=False)
    if not rt.wait_stopped(c.bundle, c.name, seconds):
        rt.call(c.bundle, "kill", "--all", c.name, str(int(signal.SIGKILL)), check=False)
        if not rt.wait_stopped(c.bundle, c.name, 10):
            raise RuntimeFailure(f"container {c.name}: still running after SIGKILL")


def remove(c: Container, force: bool = False) -> None:
    """Delete the container: runtime state, network, then every mount below the bundle
    (volumes first, the overlay root last), and only then its directories."""
    rt = c.runtime()
    with c.store.lock():
        status = rt.status(c.bundle, c.name)
        if status not in ("stopped", "exited"):
            if not force:
                raise RuntimeFailure(f"container {c.name}: is {status}; stop it or use rm -f")
            rt.call(c.bundle, "kill", "--all", c.name, str(int(signal.SIGKILL)), check=False)
        if status != "exited":
            rt.call(c.bundle, "delete", "--force", c.name)
        opts = c.meta["options"]
        if opts["net"] == "bridge":
            from bundles.tool import bridge

            bridge.disconnect(c.store.net, opts["bridge"], c.name)
        mounts.unmount_all(c.bundle)
        mounts.remove_tree(c.bundle)


def names(store: Store) -> list[str]:
    """Every container, sorted."""
    if not store.containers.is_dir():
        return []
    return sorted(p.name for p in store.containers.iterdir() if (p / "meta.json").is_file())


def describe(c: Container) -> dict[str, Any]:
    """What `inspect` shows: the metadata plus status, address, bundle and pid."""
    from bundles.tool import ipam

    meta = c.meta
    state = c.runtime().state(c.bundle, c.name)
    opts = meta["options"]
    address = (ipam.address_of(c.store.net, opts["bridge"], c.name)
               if opts["net"] == "bridge" else None)
    never_ran = "created" if not c.log.exists() else "exited"
    return dict(meta, status=state["status"] if state else never_ran,
                pid=state.get("pid", 0) if state else 0, address=address,
                bundle=str(c.bundle))
