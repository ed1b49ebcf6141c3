"""Read a container's cgroup statistics into the document `runc events --stats` prints.

Field names and the omit-when-zero rules follow runc's `types.Stats` (what go-runc parses).
Each controller is read from whichever hierarchy holds it: a v1 controller directory first,
else the unified (v2) one; files a kernel lacks are skipped, never an error.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ociruntime.cgroups.manager import CgroupManager

NO_LIMIT = (1 << 64) - 1  # runc reports v2's "max" as the largest uint64
_USER_HZ = 100


def _read(directory: str | None, name: str) -> str | None:
    if not directory:
        return None
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read()
    except OSError:
        return None


def _int(directory: str | None, name: str) -> int | None:
    text = _read(directory, name)
    if text is None:
        return None
    text = text.strip()
    if text == "max":
        return NO_LIMIT
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


def _keyed(directory: str | None, name: str) -> dict[str, int]:
    """A flat-keyed file (`key value` per line: memory.stat, cpu.stat, memory.events)."""
    out: dict[str, int] = {}
    for line in (_read(directory, name) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def _dirs(manager: CgroupManager, controller: str) -> tuple[str | None, str | None]:
    """(v1 directory, v2 directory) for a controller; at most one is not None."""
    for key, path in manager.paths.items():
        if key and controller in key.split(","):
            return path, None
    unified = manager.paths.get("")
    if unified and controller in (_read(os.path.dirname(unified), "cgroup.subtree_control")
                                  or _read(unified, "cgroup.controllers") or "").split():
        return None, unified
    return None, None


def _nonzero(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop the zero/empty fields runc marks omitempty."""
    return {k: v for k, v in doc.items() if v not in (0, None, [], {}, "")}


def _cpu(manager: CgroupManager) -> dict[str, Any]:
    acct, _ = _dirs(manager, "cpuacct")
    v1, v2 = _dirs(manager, "cpu")
    usage: dict[str, Any] = {"kernel": 0, "user": 0}
    if acct:
        usage["total"] = _int(acct, "cpuacct.usage") or 0
        for name, key in (("cpuacct.usage_percpu", "percpu"),
                          ("cpuacct.usage_percpu_sys", "percpu_kernel"),
                          ("cpuacct.usage_percpu_user", "percpu_user")):
            values = [int(x) for x in (_read(acct, name) or "").split()]
            if values:
                usage[key] = values
        ticks = _keyed(acct, "cpuacct.stat")
        usage["kernel"] = ticks.get("system", 0) * (10**9 // _USER_HZ)
        usage["user"] = ticks.get("user", 0) * (10**9 // _USER_HZ)
    stat = _keyed(v1 or v2, "cpu.stat")
    if v2:
        usage["total"] = stat.get("usage_usec", 0) * 1000
        usage["kernel"] = stat.get("system_usec", 0) * 1000
        usage["user"] = stat.get("user_usec", 0) * 1000
    throttled = stat.get("throttled_time", stat.get("throttled_usec", 0) * 1000)
    throttling = _nonzero({"periods": stat.get("nr_periods", 0),
                           "throttledPeriods": stat.get("nr_throttled", 0),
                           "throttledTime": throttled})
    ordered = {k: usage[k] for k in ("total", "percpu", "percpu_kernel", "percpu_user")
               if usage.get(k)}
    ordered.update(kernel=usage["kernel"], user=usage["user"])
    return {"usage": ordered, "throttling": throttling}


def _cpu_list(text: str | None) -> list[int]:
    out: list[int] = []
    for part in (text or "").strip().split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        elif part:
            out.append(int(part))
    return out


def _cpuset(manager: CgroupManager) -> dict[str, Any]:
    v1, v2 = _dirs(manager, "cpuset")
    if v1:
        doc: dict[str, Any] = {"cpus": _cpu_list(_read(v1, "cpuset.cpus")),
                               "mems": _cpu_list(_read(v1, "cpuset.mems"))}
        for name in ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate",
                     "memory_spread_page", "memory_spread_slab", "memory_pressure",
                     "sched_load_balance", "sched_relax_domain_level"):
            value = _int(v1, f"cpuset.{name}")
            if value is not None:
                doc[name] = value
        return doc
    if v2:
        return {"cpus": _cpu_list(_read(v2, "cpuset.cpus.effective")),
                "mems": _cpu_list(_read(v2, "cpuset.mems.effective"))}
    return {}


def _entry(directory: str, prefix: str, *, with_usage: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"limit": _int(directory, f"{prefix}.limit_in_bytes") or 0}
    if with_usage:
        doc["usage"] = _int(directory, f"{prefix}.usage_in_bytes") or 0
        doc["max"] = _int(directory, f"{prefix}.max_usage_in_bytes") or 0
    doc["failcnt"] = _int(directory, f"{prefix}.failcnt") or 0
    return {k: v for k, v in doc.items() if v or k in ("limit", "failcnt")}


def _memory(manager: CgroupManager) -> dict[str, Any]:
    v1, v2 = _dirs(manager, "memory")
    if v1:
        raw = _keyed(v1, "memory.stat")
        doc: dict[str, Any] = {"cache": raw.get("cache", 0), "usage": _entry(v1, "memory")}
        if os.path.exists(os.path.join(v1, "memory.memsw.usage_in_bytes")):
            doc["swap"] = _entry(v1, "memory.memsw")
        doc["kernel"] = _entry(v1, "memory.kmem")
        doc["kernelTCP"] = _entry(v1, "memory.kmem.tcp")
        doc["raw"] = raw
        return _nonzero(doc)
    if v2:
        raw = _keyed(v2, "memory.stat")
        current = _int(v2, "memory.current") or 0
        events = _keyed(v2, "memory.events")
        usage = {"limit": _int(v2, "memory.max") or 0, "usage": current,
                 "max": _int(v2, "memory.peak") or 0, "failcnt": events.get("max", 0)}
        doc = {"cache": raw.get("file", 0), "usage": {k: v for k, v in usage.items()
                                                      if v or k in ("limit", "failcnt")}}
        swap = _int(v2, "memory.swap.current")
        if swap is not None:  # runc shows v2 swap as memory+swap, like v1's memsw
            doc["swap"] = {"limit": _int(v2, "memory.swap.max") or 0, "usage": swap + current,
                           "failcnt": _keyed(v2, "memory.swap.events").get("max", 0)}
        doc["raw"] = raw
        return _nonzero(doc)
    return {}


def _pids(manager: CgroupManager) -> dict[str, Any]:
    v1, v2 = _dirs(manager, "pids")
    directory = v1 or v2
    limit = _int(directory, "pids.max")
    return _nonzero({"current": _int(directory, "pids.current") or 0,
                     "limit": 0 if limit == NO_LIMIT else (limit or 0)})


def _blkio_v1_entries(directory: str, name: str) -> list[dict[str, Any]]:
    entries = []
    for line in (_read(directory, name) or "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue  # the "Total N" line
        major, minor = parts[0].split(":", 1)
        entries.append(_nonzero({"major": int(major), "minor": int(minor), "op": parts[1],
                                 "value": int(parts[2])}))
    return entries


def _blkio(manager: CgroupManager) -> dict[str, Any]:
    v1, v2 = _dirs(manager, "blkio")
    if v2 is None:
        v2 = _dirs(manager, "io")[1]
    doc: dict[str, Any] = {}
    if v1:
        for key, names in (("ioServiceBytesRecursive", ("blkio.io_service_bytes_recursive",
                                                        "blkio.throttle.io_service_bytes")),
                           ("ioServicedRecursive", ("blkio.io_serviced_recursive",
                                                    "blkio.throttle.io_serviced"))):
            for name in names:
                entries = _blkio_v1_entries(v1, name)
                if entries:
                    doc[key] = entries
                    break
    elif v2:
        service_bytes, serviced = [], []
        for line in (_read(v2, "io.stat") or "").splitlines():
            parts = line.split()
            if not parts or ":" not in parts[0]:
                continue
            major, minor = (int(x) for x in parts[0].split(":", 1))
            fields = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
            for src, op, target in (("rbytes", "Read", service_bytes),
                                    ("wbytes", "Write", service_bytes),
                                    ("rios", "Read", serviced), ("wios", "Write", serviced)):
                if src in fields:
                    target.append(_nonzero({"major": major, "minor": minor, "op": op,
                                            "value": int(fields[src])}))
        if service_bytes:
            doc["ioServiceBytesRecursive"] = service_bytes
        if serviced:
            doc["ioServicedRecursive"] = serviced
    return doc


def _hugetlb(manager: CgroupManager) -> dict[str, Any]:
    v1, v2 = _dirs(manager, "hugetlb")
    directory = v1 or v2
    if not directory:
        return {}
    out: dict[str, Any] = {}
    for name in sorted(os.listdir(directory)):
        parts = name.split(".")
        if len(parts) != 3 or parts[0] != "hugetlb" or parts[2] not in ("usage_in_bytes",
                                                                          "current"):
            continue
        size = parts[1]
        if v1:
            entry = {"usage": _int(v1, f"hugetlb.{size}.usage_in_bytes") or 0,
                     "max": _int(v1, f"hugetlb.{size}.max_usage_in_bytes") or 0,
                     "failcnt": _int(v1, f"hugetlb.{size}.failcnt") or 0}
        else:
            entry = {"usage": _int(v2, f"hugetlb.{size}.current") or 0,
                     "failcnt": _keyed(v2, f"hugetlb.{size}.events").get("max", 0)}
        out[size] = {k: v for k, v in entry.items() if v or k == "failcnt"}
    return out


def network_interfaces(pid: int) -> list[dict[str, Any]] | None:
    """Counters of every interface in the network namespace of `pid` (/proc/PID/net/dev)."""
    text = _read(f"/proc/{pid}/net", "dev")
    if text is None:
        return None
    out = []
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        values = [int(x) for x in rest.split()]
        if len(values) < 12:
            continue
        out.append({"name": name.strip(), "rx_bytes": values[0], "rx_packets": values[1],
                    "rx_errors": values[2], "rx_dropped": values[3], "tx_bytes": values[8],
                    "tx_packets": values[9], "tx_errors": values[10], "tx_dropped": values[11]})
    return out


def collect(manager: CgroupManager, pid: int) -> dict[str, Any]:
    """The `data` of a runc stats event for the container whose init is `pid`."""
    return {
        "cpu": _cpu(manager),
        "cpuset": _cpuset(manager),
        "memory": _memory(manager),
        "pids": _pids(manager),
        "blkio": _blkio(manager),
        "hugetlb": _hugetlb(manager),
        "intel_rdt": {},
        "network_interfaces": network_interfaces(pid),
    }


def oom_kills(manager: CgroupManager) -> int:
    """How many OOM kills the container's memory cgroup has seen (v2 memory.events, v1
    memory.oom_control), or -1 when there is no memory controller."""
    v1, v2 = _dirs(manager, "memory")
    if v1:
        return _keyed(v1, "memory.oom_control").get("oom_kill", -1)
    if v2:
        return _keyed(v2, "memory.events").get("oom_kill", -1)
    return -1
