"""Read a container's cgroup statistics into the document `runc events --stats` prints.

Field names, order and the omit-when-zero rules follow runc 1.1's `types.Stats` (what
containerd's go-runc parses). Each controller is read from whichever hierarchy holds it: a v1
controller directory first, else the unified (v2) one; files a kernel lacks are skipped, never
an error.
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
    # v2's cpu.stat exists even where the cpu controller is not enabled
    unified = manager.paths.get("")
    stat = _keyed(v1, "cpu.stat") if v1 else _keyed(v2 or unified, "cpu.stat")
    if not acct and (v2 or unified):
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


_CPUSET_FLAGS = ("mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                 "memory_spread_slab", "memory_pressure", "sched_load_balance",
                 "sched_relax_domain_level")


def _cpuset(manager: CgroupManager) -> dict[str, Any]:
    """runc's CPUSet: cpus and mems when known, the v1 flag files always (0 where absent)."""
    v1, v2 = _dirs(manager, "cpuset")
    if v1:
        cpus, mems = _read(v1, "cpuset.cpus"), _read(v1, "cpuset.mems")
    else:
        cpus, mems = _read(v2, "cpuset.cpus.effective"), _read(v2, "cpuset.mems.effective")
    doc: dict[str, Any] = {}
    if _cpu_list(cpus):
        doc["cpus"] = _cpu_list(cpus)
    doc["cpu_exclusive"] = _int(v1, "cpuset.cpu_exclusive") or 0
    if _cpu_list(mems):
        doc["mems"] = _cpu_list(mems)
    for name in _CPUSET_FLAGS:
        doc[name] = _int(v1, f"cpuset.{name}") or 0
    return doc


def _entry(limit: int, usage: int = 0, peak: int = 0, failcnt: int = 0) -> dict[str, int]:
    """A MemoryEntry as runc writes it: limit and failcnt always, usage and max when set."""
    doc = {"limit": limit, "usage": usage, "max": peak, "failcnt": failcnt}
    return {k: v for k, v in doc.items() if v or k in ("limit", "failcnt")}


def _v1_entry(directory: str, prefix: str) -> dict[str, int]:
    return _entry(_int(directory, f"{prefix}.limit_in_bytes") or 0,
                  _int(directory, f"{prefix}.usage_in_bytes") or 0,
                  _int(directory, f"{prefix}.max_usage_in_bytes") or 0,
                  _int(directory, f"{prefix}.failcnt") or 0)


def _memory(manager: CgroupManager) -> dict[str, Any]:
    """runc's Memory: the usage, swap, kernel and kernelTCP entries are always present."""
    v1, v2 = _dirs(manager, "memory")
    raw: dict[str, int] = {}
    cache = 0
    usage = swap = kernel = kernel_tcp = _entry(0)
    if v1:
        raw = _keyed(v1, "memory.stat")
        cache = raw.get("cache", 0)
        usage, swap = _v1_entry(v1, "memory"), _v1_entry(v1, "memory.memsw")
        kernel, kernel_tcp = _v1_entry(v1, "memory.kmem"), _v1_entry(v1, "memory.kmem.tcp")
    elif v2:
        raw = _keyed(v2, "memory.stat")
        cache = raw.get("file", 0)
        current, limit = _int(v2, "memory.current") or 0, _int(v2, "memory.max") or 0
        peak = _int(v2, "memory.peak") or 0
        usage = _entry(limit, current, peak, _keyed(v2, "memory.events").get("max", 0))
        swap_current = _int(v2, "memory.swap.current")
        if swap_current is not None:  # runc shows v2 swap as memory+swap, like v1's memsw
            swap_limit = _int(v2, "memory.swap.max") or 0
            if swap_limit != NO_LIMIT:
                swap_limit = NO_LIMIT if limit == NO_LIMIT else swap_limit + limit
            swap = _entry(swap_limit, swap_current + current,
                          failcnt=_keyed(v2, "memory.swap.events").get("max", 0))
    doc: dict[str, Any] = {}
    if cache:
        doc["cache"] = cache
    doc.update(usage=usage, swap=swap, kernel=kernel, kernelTCP=kernel_tcp)
    if raw:
        doc["raw"] = raw
    return doc


def _pids(manager: CgroupManager) -> dict[str, Any]:
    v1, v2 = _dirs(manager, "pids")
    directory = v1 or v2
    if directory is None:  # no pids controller: count the processes, no limit (as runc)
        return _nonzero({"current": len(manager.pids())})
    limit = _int(directory, "pids.max")
    return _nonzero({"current": _int(directory, "pids.current") or 0,
                     "limit": 0 if limit == NO_LIMIT else (limit or 0)})


def _blkio_v1_entries(directory: str, name: str) -> list[dict[str, Any]]:
    """`MAJ:MIN [Op] value` lines (the `Total` line skipped)."""
    entries = []
    for line in (_read(directory, name) or "").splitlines():
        parts = line.split()
        if len(parts) not in (2, 3) or ":" not in parts[0]:
            continue
        major, minor = parts[0].split(":", 1)
        try:
            entries.append(_nonzero({"major": int(major), "minor": int(minor),
                                     "op": parts[1] if len(parts) == 3 else "",
                                     "value": int(parts[-1])}))
        except ValueError:
            continue
    return entries


# v1 blkio file sets in the order runc tries them; the first set whose first file has entries
# is used: BFQ with its debug files, BFQ, CFQ, throttle (recursive), throttle
_BLKIO_V1_SETS = (
    ("blkio.bfq.", "_recursive", ("sectors", "io_service_time", "io_wait_time", "io_merged",
                                  "io_queued", "time", "io_serviced", "io_service_bytes")),
    ("blkio.bfq.", "_recursive", ("io_serviced", "io_service_bytes")),
    ("blkio.", "_recursive", ("sectors", "io_service_time", "io_wait_time", "io_merged",
                              "io_queued", "time", "io_serviced", "io_service_bytes")),
    ("blkio.throttle.", "_recursive", ("io_serviced", "io_service_bytes")),
    ("blkio.throttle.", "", ("io_serviced", "io_service_bytes")),
)
_BLKIO_KEYS = {"io_service_bytes": "ioServiceBytesRecursive",
               "io_serviced": "ioServicedRecursive", "io_queued": "ioQueueRecursive",
               "io_service_time": "ioServiceTimeRecursive",
               "io_wait_time": "ioWaitTimeRecursive", "io_merged": "ioMergedRecursive",
               "time": "ioTimeRecursive", "sectors": "sectorsRecursive"}


def _blkio_v1(directory: str) -> dict[str, Any]:
    for prefix, suffix, names in _BLKIO_V1_SETS:
        if not _blkio_v1_entries(directory, f"{prefix}{names[0]}{suffix}"):
            continue
        found = {_BLKIO_KEYS[n]: _blkio_v1_entries(directory, f"{prefix}{n}{suffix}")
                 for n in names}
        return {key: found[key] for key in _BLKIO_KEYS.values() if found.get(key)}
    return {}


def _blkio_v2(directory: str) -> dict[str, Any]:
    """io.stat mapped to v1's tables: rbytes/wbytes and rios/wios as Read/Write entries."""
    service_bytes: list[dict[str, Any]] = []
    serviced: list[dict[str, Any]] = []
    for line in (_read(directory, "io.stat") or "").splitlines():
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
    return _nonzero({"ioServiceBytesRecursive": service_bytes,
                     "ioServicedRecursive": serviced})


def _blkio(manager: CgroupManager) -> dict[str, Any]:
    v1, v2 = _dirs(manager, "blkio")
    if v1:
        return _blkio_v1(v1)
    v2 = v2 or _dirs(manager, "io")[1]
    return _blkio_v2(v2) if v2 else {}


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
    """Counters of every interface in the network namespace of `pid` (/proc/PID/net/dev).

    runc's NetworkInterface has no JSON tags, so its keys are the Go field names.
    """
    text = _read(f"/proc/{pid}/net", "dev")
    if text is None:
        return None
    out = []
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        try:
            values = [int(x) for x in rest.split()]
        except ValueError:
            continue
        if len(values) < 12:
            continue
        out.append({"Name": name.strip(), "RxBytes": values[0], "RxPackets": values[1],
                    "RxErrors": values[2], "RxDropped": values[3], "TxBytes": values[8],
                    "TxPackets": values[9], "TxErrors": values[10], "TxDropped": values[11]})
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
