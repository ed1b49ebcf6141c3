"""config.json for a container of an image: pyrunc's default spec
(ociruntime.config.defaults.default_spec) with the image config's Entrypoint, Cmd, Env,
WorkingDir and User, then the command line's options (volumes, limits, hostname, network).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field

from ociruntime.config.defaults import default_spec
from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NETWORKS = ("none", "host", "bridge")
DEFAULT_BRIDGE = "pyrunc0"
DEFAULT_SUBNET = "10.88.200.0/24"
_SIZE = re.compile(r"(\d+)([kmg]?)b?", re.IGNORECASE)


@dataclass
class Volume:
    """`-v HOST:CTR[:ro|rw]`."""

    host: str
    container: str
    readonly: bool = False

    @classmethod
    def parse(cls, text: str) -> Volume:
        parts = text.split(":")
        mode = parts.pop() if len(parts) == 3 else "rw"
        if len(parts) != 2 or mode not in ("ro", "rw"):
            raise RuntimeFailure(f"-v {text}: expected HOST:CONTAINER[:ro|rw]")
        host, ctr = parts
        if not os.path.isabs(host) or not os.path.isabs(ctr):
            raise RuntimeFailure(f"-v {text}: both paths must be absolute")
        if os.path.normpath(ctr) == "/":
            raise RuntimeFailure(f"-v {text}: cannot mount over the container's /")
        return cls(os.path.normpath(host), os.path.normpath(ctr), mode == "ro")


def parse_size(text: str, flag: str) -> int:
    """`64m`, `1g`, `512k`, or bytes."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise RuntimeFailure(f"{flag} {text}: expected a size like 64m, 1g or bytes")
    return int(m.group(1)) * 1024 ** " kmg".index(m.group(2).lower() or " ")


@dataclass
class Options:
    """What `create` and `run` take besides the image."""

    name: str = ""
    command: list[str] = field(default_factory=list)
    entrypoint: str | None = None
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    volumes: list[Volume] = field(default_factory=list)
    memory: int | None = None
    cpus: float | None = None
    cpuset: str | None = None
    pids: int | None = None
    hostname: str | None = None
    net: str = "none"
    bridge: str = DEFAULT_BRIDGE
    subnet: str = DEFAULT_SUBNET
    read_only: bool = False
    cap_add: list[str] = field(default_factory=list)


def _merge_env(*lists: list[str]) -> list[str]:
    merged: dict[str, str] = {}
    for items in lists:
        for item in items:
            key, sep, _ = item.partition("=")
            if not sep or not key:
                raise RuntimeFailure(f"environment {item!r}: expected KEY=VALUE")
            merged[key] = item
    return list(merged.values())


def _args(image: dict[str, Any], opts: Options) -> list[str]:
    if opts.entrypoint is not None:
        entry = [opts.entrypoint] if opts.entrypoint else []
        cmd = opts.command
    else:
        entry = list(image.get("Entrypoint") or [])
        cmd = opts.command or list(image.get("Cmd") or [])
    args = entry + cmd
    if not args:
        raise RuntimeFailure("no command: the image has no Entrypoint or Cmd and none was given")
    return args


def _resources(opts: Options) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if opts.memory is not None:
        res["memory"] = {"limit": opts.memory}
    cpu: dict[str, Any] = {}
    if opts.cpus is not None:
        if opts.cpus <= 0:
            raise RuntimeFailure(f"--cpus {opts.cpus}: must be more than 0")
        cpu.update(period=100000, quota=max(1000, round(opts.cpus * 100000)))
    if opts.cpuset is not None:
        cpu["cpus"] = opts.cpuset
    if cpu:
        res["cpu"] = cpu
    if opts.pids is not None:
        res["pids"] = {"limit": opts.pids}
    return res


def net_hooks(root: str, opts: Options) -> dict[str, list[dict[str, Any]]]:
    """createRuntime/poststop hooks running `python -m bundles.tool net-hook up|down`."""
    def hook(action: str) -> dict[str, Any]:
        return {"path": sys.executable,
                "args": [sys.executable, "-I", "-m", "bundles.tool", "--root", root,
                         "net-hook", action, "--bridge", opts.bridge, "--subnet", opts.subnet],
                "timeout": 30}
    return {"createRuntime": [hook("up")], "poststop": [hook("down")]}


def build_config(image_config: dict[str, Any], opts: Options, user: dict[str, Any],
                 root: str) -> dict[str, Any]:
    """The container's config.json (`user` is the resolved process.user; `root` the store)."""
    image = image_config.get("config") or {}
    config = default_spec(terminal=False)
    process = config["process"]
    process["args"] = _args(image, opts)
    process["env"] = _merge_env(process["env"], list(image.get("Env") or []), opts.env)
    process["cwd"] = opts.workdir or image.get("WorkingDir") or "/"
    if not process["cwd"].startswith("/"):
        raise RuntimeFailure(f"working directory {process['cwd']!r}: must be absolute")
    process["user"] = user
    for cap in opts.cap_add:
        cap = cap.upper() if cap.upper().startswith("CAP_") else "CAP_" + cap.upper()
        for kind in ("bounding", "effective", "permitted", "ambient"):
            if cap not in process["capabilities"][kind]:
                process["capabilities"][kind].append(cap)
    config["root"] = {"path": "rootfs", "readonly": opts.read_only}
    config["hostname"] = opts.hostname or opts.name
    config["mounts"] += [
        {"destination": v.container, "type": "bind", "source": v.host,
         "options": ["rbind"] + (["ro"] if v.readonly else [])}
        for v in opts.volumes]
    if opts.net not in NETWORKS:
        raise RuntimeFailure(f"--net {opts.net}: expected one of {', '.join(NETWORKS)}")
    if opts.net == "host":
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                         if n["type"] != "network"]
    elif opts.net == "bridge":
        config["hooks"] = net_hooks(root, opts)
    config["linux"]["resources"].update(_resources(opts))
    return config
