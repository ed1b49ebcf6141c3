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
    "kernel_memory": ("memory", "kernel", "ram"),
    "kernel_memory_tcp": ("memory", "kernelTCP", "ram"),
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


# values runc's update treats as "leave unchanged" when 0 or "" (containerd sends zeros)
_ZERO_KEEPS = {
    "memory": ("limit", "reservation", "swap", "kernel", "kernelTCP"),
    "cpu": ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems"),
    "blockIO": ("weight",),
    "pids": ("limit",),
}


def _sets(section: str, key: str, value: object) -> bool:
    """True when `value` changes the stored one (None, and runc's zero values, do not)."""
    if value is None:
        return False
    return not (key in _ZERO_KEEPS.get(section, ()) and value in (0, "")
                and not isinstance(value, bool))


def merge(stored: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`stored` with every value `update` sets (None, absent and runc's "unchanged" zero
    values leave it as it was)."""
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in stored.items()}
    for section in UPDATABLE:
        value = update.get(section)
        if value is None:
            continue
        if isinstance(value, dict):
            target = merged.setdefault(section, {})
            target.update({k: v for k, v in value.items() if _sets(section, k, v)})
        else:
            merged[section] = value
    return merged


def _touched(merged: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """What to write: every section the update names, with its merged values."""
    return {s: merged[s] for s in UPDATABLE if update.get(s) is not None and s in merged}


def update_container(root: str, container_id: str, update: dict[str, Any]) -> None:
    """Apply `update` to the container's cgroups and record the merged resources.

    When the kernel rejects a value, what was already written is set back to the recorded
    resources (as runc does) and the state is left unchanged.
    """
    from ociruntime import log
    from ociruntime.cgroups.manager import CgroupManager
    from ociruntime.cgroups.resources import apply_resources
    from ociruntime.container import recorded
    from ociruntime.state import derive_status

    _check_shape(update)
    _drop_kernel_memory(update)
    state_dir, _ = recorded(root, container_id)
    state_dir.lock()
    try:
        state = state_dir.load()  # as it is now that we hold the lock
        status = derive_status(state_dir, state)
        if status in ("stopped", "creating"):
            raise RuntimeFailure("container not running")
        linux = state.config.setdefault("linux", {})
        stored = linux.get("resources") or {}
        merged = merge(stored, update)
        manager = CgroupManager.from_state(state.cgroup_paths)
        if not manager.paths:
            raise RuntimeFailure("update: this container has no cgroups (rootless without "
                                 "delegation)")
        try:
            # initial=True: also enables v2 controllers the container was created without
            apply_resources(manager, _touched(merged, update), initial=True)
        except RuntimeFailure:
            try:
                apply_resources(manager, _touched(stored, update), initial=False)
            except RuntimeFailure as e:
                log.warning(f"update: setting back the previous limits failed: {e}")
            raise
        linux["resources"] = merged
        state_dir.write(state)
    finally:
        state_dir.unlock()


def _drop_kernel_memory(update: dict[str, Any]) -> None:
    """Kernel memory limits are ignored with a warning, as runc 1.1 does (kernels >= 5.16
    have no kmem limit)."""
    memory = update.get("memory") or {}
    if any(memory.pop(key, None) for key in ("kernel", "kernelTCP")):
        from ociruntime import log

        message = "update: kernel memory settings are ignored"
        log.warning(message)
        os.write(2, f"pyrunc: {message}\n".encode())


def refuse_rdt(values: dict[str, str | None]) -> None:
    """runc's Intel RDT flags: refused, as runc does where resctrl is not enabled."""
    for dest in ("l3_cache_schema", "mem_bw_schema"):
        if values.get(dest):
            raise RuntimeFailure(f"update: --{dest.replace('_', '-')}: Intel RDT (resctrl) is "
                                 "not supported")

