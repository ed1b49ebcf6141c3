"""Where a controller's files are, whichever hierarchy holds it on the host running the tests:
a v1 controller hierarchy (hybrid hosts) or the unified v2 one (pure cgroup v2 hosts, the
User-Mode-Linux guest). Tests name a limit once (a Knob) and get the file to read inside a
busybox container (cgroups mounted at /sys/fs/cgroup) and the text the kernel shows there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ociruntime.cgroups.layout import Hierarchy, discover, is_unified_only
from ociruntime.cgroups.resources import shares_to_weight

INSIDE = "/sys/fs/cgroup"


def hierarchy(controller: str) -> Hierarchy | None:
    """The hierarchy holding `controller` on this host: its v1 one, else the unified one."""
    found = discover()
    for h in found:
        if h.version == 1 and controller in h.key.split(","):
            return h
    for h in found:
        if h.version == 2 and controller in h.controllers:
            return h
    return None


def version(controller: str) -> int:
    """1 or 2 for the hierarchy holding `controller`; 0 when the host has no such controller."""
    h = hierarchy(controller)
    return h.version if h else 0


def inside(controller: str, name: str) -> str:
    """Path of `name` of the container's own cgroup, as the container sees it (a shell word).

    v1: the runtime binds the container's cgroup at /sys/fs/cgroup/<hierarchy>. v2: a cgroup2
    mount shows the whole hierarchy, or from the container's cgroup down in a cgroup
    namespace; /proc/self/cgroup gives the path from that root either way."""
    h = hierarchy(controller)
    assert h is not None, f"no {controller} controller on this host"
    if is_unified_only(discover()):
        return f'"{INSIDE}$(sed -n "s/^0:://p" /proc/self/cgroup)/{name}"'
    return f"{INSIDE}/{os.path.basename(h.mountpoint)}/{name}"


@dataclass(frozen=True)
class Knob:
    """One limit as v1 and v2 show it; `v2_text` turns the runtime-spec value into v2's text."""

    controller: str
    v1: str
    v2: str
    v2_text: Callable[..., str] = str

    @property
    def path(self) -> str:
        """The file inside the container."""
        return inside(self.controller, self.v1 if version(self.controller) == 1 else self.v2)

    def text(self, value: int, **extra: int) -> str:
        """What the file holds once the runtime-spec `value` is applied."""
        if version(self.controller) == 1:
            return str(value)
        return self.v2_text(value, **extra)


def _max_or(value: int) -> str:
    return "max" if value < 0 else str(value)


MEMORY = Knob("memory", "memory.limit_in_bytes", "memory.max", _max_or)
PIDS = Knob("pids", "pids.max", "pids.max", _max_or)
SHARES = Knob("cpu", "cpu.shares", "cpu.weight", lambda v: str(shares_to_weight(v)))
QUOTA = Knob("cpu", "cpu.cfs_quota_us", "cpu.max",
             lambda v, period=100000: f"{_max_or(v)} {period}")
# v1 memsw is memory+swap; v2 swap.max is the swap alone (the spec's swap minus the limit)
SWAP = Knob("memory", "memory.memsw.limit_in_bytes", "memory.swap.max",
            lambda v, limit=0: str(v - limit))


def read_inside(runtime, container_id: str, *knobs: Knob) -> list[str]:
    """The current text of each knob's file, read by a process exec'd in the container."""
    script = "; ".join(f"cat {k.path}" for k in knobs)
    proc = runtime.run("exec", container_id, "sh", "-c", script, check=True)
    return proc.stdout.strip("\n").split("\n")


def has_file(controller: str, v1: str, v2: str) -> bool:
    """True when this kernel has the file (e.g. swap accounting) in the root of `controller`'s
    hierarchy or, for v2, in any direct child cgroup (the root lacks most files)."""
    h = hierarchy(controller)
    if h is None:
        return False
    name = v1 if h.version == 1 else v2
    if os.path.exists(os.path.join(h.mountpoint, name)):
        return True
    return any(os.path.exists(os.path.join(h.mountpoint, d, name))
               for d in os.listdir(h.mountpoint)
               if os.path.isdir(os.path.join(h.mountpoint, d)))
