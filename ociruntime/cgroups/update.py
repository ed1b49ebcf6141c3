"""`pyrunc update`: change a live container's cgroup limits, as `runc update` does.

The new values come from runc's flags or from a LinuxResources JSON document (`-r FILE|-`,
what containerd's shim sends; then the flags are ignored, like runc). They are merged into the
resources recorded in the container's state, written to the cgroups, and the merged resources
are recorded, so later updates and `events --stats` see them.
"""

from __future__ import annotations

import os
import sys

from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

# flag dest -> (section, key, parser); parsers: "ram" (512m), "int", "str"
FLAG_FIELDS = {
    "memory": ("memory", "limit", "ram"),
    "memory_reservation": ("memory", "reservation", "ram"),
    "memory_swap": ("memory", "swap", "ram"),
    "cpu_share": ("cpu", "shares", "int"),
    "cpu_period": ("cpu", "period", "int"),
    "cpu_quota": ("cpu", "quota", "int"),
    "cpu_rt_period": ("cpu", "realtimePeriod", "int"),
    "cpu_rt_runtime": ("cpu", "realtimeRuntime", "int"),
    "cpuset_cpus": ("cpu", "cpus", "str"),
    "cpuset_mems": ("cpu", "mems", "str"),
    "pids_limit": ("pids", "limit", "int"),
    "blkio_weight": ("blockIO", "weight", "int"),
}
# the LinuxResources sections an update may change (devices stay as created, as with runc)
UPDATABLE = ("memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "unified")


def parse_ram(text: str, flag: str) -> int:
    """A size like runc's (docker/go-units RAMInBytes): 1024, 512k, 100m, 1.5GiB; -1 = no limit."""
    value = text.strip().lower()
    if value == "-1":
        return -1
    digits = len(value) - len(value.lstrip("0123456789."))
    number, suffix = value[:digits], value[digits:].strip()
    unit = suffix[:1]
    if suffix not in ("", "b") and suffix[1:] not in ("", "b", "ib"):
        unit = "?"
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if amount < 0 or unit not in _UNITS:
        raise RuntimeFailure(f"invalid value for {flag}: invalid size: '{text}'")
    return int(amount * _UNITS[unit])


def resources_from_flags(values: dict[str, str | None]) -> dict[str, Any]:
    """LinuxResources from runc update's flags (only the flags that were given)."""
    out: dict[str, Any] = {}
    for dest, (section, key, kind) in FLAG_FIELDS.items():
        text = values.get(dest)
        if text is None or text == "":
            continue
        flag = dest.replace("_", "-")
        if kind == "ram":
            value: object = parse_ram(text, flag)
        elif kind == "int":
            try:
                value = int(text)
            except ValueError:
                raise RuntimeFailure(f"invalid value for {flag}: {text!r} is not a number") \
                    from None
        else:
            value = text
        if section == "pids":
            out["pids"] = {"limit": value}
        else:
            out.setdefault(section, {})[key] = value
    return out


def read_resources(source: str) -> dict[str, Any]:
    """The LinuxResources document of `-r FILE` or `-r -` (stdin)."""
    from ociruntime.jsonio import loads

    try:
        if source == "-":
            text = sys.stdin.buffer.read()
        else:
            with open(source, "rb") as f:
                text = f.read()
        doc = loads(text)
    except OSError as e:
        raise RuntimeFailure(f"update: read resources {source}: {e.strerror}") from None
    except ValueError as e:
        raise RuntimeFailure(f"update: resources {source}: invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise RuntimeFailure(f"update: resources {source}: a JSON object is needed")
    return doc


def _check_shape(update: dict[str, Any]) -> None:
    for section, value in update.items():
        if section in ("hugepageLimits", "devices", "rdma"):
            continue
        if value is not None and not isinstance(value, dict):
            raise RuntimeFailure(f"update: resources.{section}: must be an object")
        for key, item in (value or {}).items():
            if section in ("memory", "pids") and item is not None and (
                    not isinstance(item, int) or isinstance(item, bool)):
                raise RuntimeFailure(f"update: resources.{section}.{key}: must be an integer")


def merge(stored: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`stored` with every value `update` sets (None and absent values leave it unchanged)."""
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in stored.items()}
    for section in UPDATABLE:
        value = update.get(section)
        if value is None:
            continue
        if isinstance(value, dict):
            target = merged.setdefault(section, {})
            target.update({k: v for k, v in value.items() if v is not None})
        else:
            merged[section] = value
    return merged


def _touched(merged: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """What to write: every section the update names, with its merged values."""
    return {s: merged[s] for s in UPDATABLE if update.get(s) is not None and s in merged}


def update_container(root: str, container_id: str, update: dict[str, Any]) -> None:
    """Apply `update` to the container's cgroups and record the merged resources."""
    from ociruntime.cgroups.manager import CgroupManager
    from ociruntime.cgroups.resources import apply_resources
    from ociruntime.container import load
    from ociruntime.state import derive_status

    _check_shape(update)
    state_dir, state, status = load(root, container_id)
    state_dir.lock()
    try:
        status = derive_status(state_dir, state)
        if status in ("stopped", "creating"):
            raise RuntimeFailure("container not running")
        linux = state.config.setdefault("linux", {})
        merged = merge(linux.get("resources") or {}, update)
        manager = CgroupManager.from_state(state.cgroup_paths)
        if not manager.paths:
            raise RuntimeFailure("update: this container has no cgroups (rootless without "
                                 "delegation)")
        apply_resources(manager, _touched(merged, update), initial=False)
        linux["resources"] = merged
        state_dir.write(state)
    finally:
        state_dir.unlock()


def warn_ignored(values: dict[str, str | None]) -> None:
    """runc's flags pyrunc accepts but cannot apply on this host are named on stderr."""
    for dest in ("l3_cache_schema", "mem_bw_schema"):
        if values.get(dest):
            raise RuntimeFailure(f"update: --{dest.replace('_', '-')}: Intel RDT (resctrl) is "
                                 "not supported")
    if values.get("kernel_memory") or values.get("kernel_memory_tcp"):
        os.write(2, b"pyrunc: update: kernel memory limits are not supported by this kernel "
                    b"(ignored, as runc does)\n")
