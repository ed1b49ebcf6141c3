"""Discover the host's cgroup hierarchies (v1, v2 or hybrid) from /proc/self/mountinfo."""

from __future__ import annotations

import os

from ociruntime.record import record


@record
class Hierarchy:
    """One mounted cgroup hierarchy.

    `key` names it in state: the comma-joined v1 controllers (``cpu,cpuacct``, ``memory``,
    ``name=systemd``) or ``""`` for the cgroup2 (unified) hierarchy.
    """

    key: str
    mountpoint: str
    root: str
    version: int

    @property
    def controllers(self) -> tuple[str, ...]:
        if self.version == 2:
            try:
                with open(os.path.join(self.mountpoint, "cgroup.controllers")) as f:
                    return tuple(f.read().split())
            except OSError:
                return ()
        return tuple(self.key.split(","))


_V1_CONTROLLERS = {
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
    "net_cls", "net_prio", "hugetlb", "perf_event", "rdma", "misc",
}


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace(
        "\\134", "\\")


def discover(mountinfo: str = "/proc/self/mountinfo") -> list[Hierarchy]:
    """Every cgroup hierarchy mounted in this mount namespace (first mount of each wins)."""
    found: dict[str, Hierarchy] = {}
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            rfields = right.split()
            if len(rfields) < 3 or len(fields) < 5:
                continue
            fstype = rfields[0]
            if fstype == "cgroup2":
                key, version = "", 2
            elif fstype == "cgroup":
                opts = rfields[2].split(",")
                names = [o for o in opts if o in _V1_CONTROLLERS or o.startswith("name=")]
                if not names:
                    continue
                key, version = ",".join(sorted(names)), 1
            else:
                continue
            if key not in found:
                found[key] = Hierarchy(key, _unescape(fields[4]), _unescape(fields[3]), version)
    return list(found.values())


def own_cgroups(proc_cgroup: str = "/proc/self/cgroup") -> dict[str, str]:
    """This process's cgroup path in each hierarchy, keyed like Hierarchy.key."""
    result: dict[str, str] = {}
    with open(proc_cgroup) as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            key = ",".join(sorted(controllers.split(","))) if controllers else ""
            result[key] = path
    return result


def is_unified_only(hierarchies: list[Hierarchy]) -> bool:
    """True on a pure cgroup v2 host."""
    return all(h.version == 2 for h in hierarchies) and bool(hierarchies)
