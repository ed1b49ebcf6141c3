"""Write `linux.resources` into the container's cgroups, on whichever hierarchy holds each
controller (v1 controller hierarchies, the v2 unified one, or both on a hybrid host).

Conversions between v1 and v2 values are the ones runc documents (cgroup-v2.md of
opencontainers/cgroups): cpu shares -> weight, blkio weight -> io.weight, memory swap -> v2
swap.max (swap minus limit).
"""

from __future__ import annotations

import os

from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ociruntime.cgroups.manager import CgroupManager

MAX = "max"


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) to cpu.weight (1..10000), as runc converts."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight (10..1000) to io.weight (1..10000)."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def _v1_dir(manager: CgroupManager, controller: str) -> str | None:
    for key, path in manager.paths.items():
        if key and controller in key.split(","):
            return path
    return None


def _v2_dir(manager: CgroupManager, controller: str) -> str | None:
    path = manager.paths.get("")
    if not path:
        return None
    root = path
    while os.path.exists(os.path.join(os.path.dirname(root), "cgroup.controllers")) and \
            os.path.dirname(root) != root:
        root = os.path.dirname(root)
    try:
        with open(os.path.join(root, "cgroup.controllers")) as f:
            available = f.read().split()
    except OSError:
        return None
    return path if controller in available else None


def write(directory: str, name: str, value: object) -> None:
    """Write one cgroup file; the error names the file and the value."""
    path = os.path.join(directory, name)
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except OSError as e:
        raise RuntimeFailure(f"write {name}={value} in {directory}: "
                             f"{e.strerror or e}") from None


def _enable_v2_controllers(manager: CgroupManager, controllers: set[str]) -> None:
    """Let the container's cgroup use `controllers` (subtree_control on every ancestor)."""
    leaf = manager.paths.get("")
    if not leaf or not controllers:
        return
    chain = []
    probe = os.path.dirname(leaf)
    while os.path.exists(os.path.join(probe, "cgroup.subtree_control")):
        chain.append(probe)
        if os.path.dirname(probe) == probe or not os.path.exists(
                os.path.join(os.path.dirname(probe), "cgroup.subtree_control")):
            break
        probe = os.path.dirname(probe)
    for directory in reversed(chain):
        with open(os.path.join(directory, "cgroup.controllers")) as f:
            have = set(f.read().split())
        wanted = " ".join(f"+{c}" for c in sorted(controllers & have))
        if wanted:
            try:
                with open(os.path.join(directory, "cgroup.subtree_control"), "w") as f:
                    f.write(wanted)
            except OSError:
                pass


def apply_resources(manager: CgroupManager, resources: dict[str, Any], *,
                    initial: bool) -> None:
    """Apply every resource the config sets; RuntimeFailure naming the file on rejection."""
    if not resources or not manager.paths:
        return
    if initial:
        _enable_v2_controllers(manager, {"memory", "cpu", "cpuset", "pids", "io", "hugetlb"})
    _memory(manager, resources.get("memory") or {})
    _cpu(manager, resources.get("cpu") or {})
    _pids(manager, resources.get("pids") or {})
    _block_io(manager, resources.get("blockIO") or {})
    _hugepages(manager, resources.get("hugepageLimits") or [])
    _network(manager, resources.get("network") or {})
    if resources.get("rdma"):
        raise RuntimeFailure("linux.resources.rdma: no rdma cgroup controller on this host")
    _unified(manager, resources.get("unified") or {})
    if resources.get("devices") is not None:
        from ociruntime.cgroups.devices import apply_device_rules

        apply_device_rules(manager, resources["devices"])


def _memory(manager: CgroupManager, mem: dict[str, Any]) -> None:
    if not mem:
        return
    v1 = _v1_dir(manager, "memory")
    limit, swap = mem.get("limit"), mem.get("swap")
    if v1:
        _v1_limit_and_swap(v1, limit, swap)
        if mem.get("reservation") is not None:
            write(v1, "memory.soft_limit_in_bytes", mem["reservation"])
        if mem.get("kernelTCP") is not None:
            write(v1, "memory.kmem.tcp.limit_in_bytes", mem["kernelTCP"])
        if mem.get("swappiness") is not None and mem["swappiness"] <= 100:
            write(v1, "memory.swappiness", mem["swappiness"])
        if mem.get("disableOOMKiller"):
            write(v1, "memory.oom_control", 1)
        return
    v2 = _v2_dir(manager, "memory")
    if v2 is None:
        raise RuntimeFailure("linux.resources.memory: no memory cgroup controller on this host")
    if limit is not None:
        write(v2, "memory.max", MAX if limit < 0 else limit)
    if swap is not None and limit is not None and os.path.exists(os.path.join(v2,
                                                                             "memory.swap.max")):
        write(v2, "memory.swap.max", MAX if swap < 0 else max(swap - max(limit, 0), 0))
    if mem.get("reservation") is not None:
        write(v2, "memory.low", mem["reservation"])


def _v1_limit_and_swap(v1: str, limit: int | None, swap: int | None) -> None:
    """memory.limit_in_bytes and memory.memsw.limit_in_bytes: the kernel keeps memsw >= limit
    at every moment, so a raise writes memsw first and a cut writes the limit first."""
    writes = []
    if limit is not None:
        writes.append(("memory.limit_in_bytes", limit))
    if swap is not None and os.path.exists(os.path.join(v1, "memory.memsw.limit_in_bytes")):
        writes.append(("memory.memsw.limit_in_bytes", swap))
    if len(writes) == 2:
        try:
            with open(os.path.join(v1, "memory.memsw.limit_in_bytes")) as f:
                current_swap = int(f.read())
        except (OSError, ValueError):
            current_swap = -1
        new_limit = limit if limit is not None and limit >= 0 else 1 << 62
        if new_limit > current_swap >= 0 or (swap is not None and swap < 0):
            writes.reverse()
    for name, value in writes:
        write(v1, name, value)


def _cpu(manager: CgroupManager, cpu: dict[str, Any]) -> None:
    if not cpu:
        return
    v1 = _v1_dir(manager, "cpu")
    if v1:
        if cpu.get("shares"):
            write(v1, "cpu.shares", cpu["shares"])
            _check_shares(v1, cpu["shares"])
        if cpu.get("period"):
            write(v1, "cpu.cfs_period_us", cpu["period"])
        if cpu.get("quota") is not None and cpu["quota"] != 0:
            write(v1, "cpu.cfs_quota_us", cpu["quota"])
        if cpu.get("burst") is not None:
            write(v1, "cpu.cfs_burst_us", cpu["burst"])
        if cpu.get("realtimePeriod"):
            write(v1, "cpu.rt_period_us", cpu["realtimePeriod"])
        if cpu.get("realtimeRuntime"):
            write(v1, "cpu.rt_runtime_us", cpu["realtimeRuntime"])
        if cpu.get("idle") is not None and os.path.exists(os.path.join(v1, "cpu.idle")):
            write(v1, "cpu.idle", cpu["idle"])
    else:
        v2 = _v2_dir(manager, "cpu")
        if v2 is None and any(cpu.get(k) for k in ("shares", "quota", "period")):
            raise RuntimeFailure("linux.resources.cpu: no cpu cgroup controller on this host")
        if v2:
            if cpu.get("shares"):
                write(v2, "cpu.weight", shares_to_weight(cpu["shares"]))
            if cpu.get("quota") is not None or cpu.get("period"):
                quota = cpu.get("quota")
                period = cpu.get("period") or 100000
                write(v2, "cpu.max", f"{MAX if quota is None or quota < 0 else quota} {period}")
            if cpu.get("idle") is not None:
                write(v2, "cpu.idle", cpu["idle"])
    for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if cpu.get(key):
            target = _v1_dir(manager, "cpuset") or _v2_dir(manager, "cpuset")
            if target is None:
                raise RuntimeFailure(f"linux.resources.cpu.{key}: no cpuset controller")
            write(target, name, cpu[key])


def _check_shares(v1: str, shares: int) -> None:
    """The kernel clamps cpu.shares to 2..262144 silently; runc reports it, so do we."""
    try:
        with open(os.path.join(v1, "cpu.shares")) as f:
            actual = int(f.read())
    except (OSError, ValueError):
        return
    if actual != shares:
        bound = "minimum" if shares < actual else "maximum"
        raise RuntimeFailure(f"cpu.shares={shares} in {v1}: the {bound} allowed cpu-shares is "
                             f"{actual}")


def _pids(manager: CgroupManager, pids: dict[str, Any]) -> None:
    if "limit" not in pids:
        return
    limit = pids["limit"]
    target = _v1_dir(manager, "pids") or _v2_dir(manager, "pids")
    if target is None:
        raise RuntimeFailure("linux.resources.pids: no pids cgroup controller on this host")
    write(target, "pids.max", MAX if limit <= 0 else limit)


def _block_io(manager: CgroupManager, bio: dict[str, Any]) -> None:
    if not bio:
        return
    v1 = _v1_dir(manager, "blkio")
    throttles = (("throttleReadBpsDevice", "read_bps_device", "rbps"),
                 ("throttleWriteBpsDevice", "write_bps_device", "wbps"),
                 ("throttleReadIOPSDevice", "read_iops_device", "riops"),
                 ("throttleWriteIOPSDevice", "write_iops_device", "wiops"))
    if v1:
        weight_file = next((n for n in ("blkio.weight", "blkio.bfq.weight")
                            if os.path.exists(os.path.join(v1, n))), None)
        if bio.get("weight"):
            if weight_file is None:
                raise RuntimeFailure("linux.resources.blockIO.weight: this kernel's blkio "
                                     "controller has no weight (no CFQ/BFQ scheduler)")
            write(v1, weight_file, bio["weight"])
        for dev in bio.get("weightDevice") or []:
            if weight_file is None:
                raise RuntimeFailure("linux.resources.blockIO.weightDevice: no blkio weight "
                                     "on this kernel")
            if dev.get("weight"):
                write(v1, weight_file + "_device" if weight_file == "blkio.weight"
                      else weight_file, f"{dev['major']}:{dev['minor']} {dev['weight']}")
        for key, name, _ in throttles:
            for dev in bio.get(key) or []:
                write(v1, f"blkio.throttle.{name}", f"{dev['major']}:{dev['minor']} {dev['rate']}")
        return
    v2 = _v2_dir(manager, "io")
    if v2 is None:
        raise RuntimeFailure("linux.resources.blockIO: no io cgroup controller on this host")
    if bio.get("weight"):
        write(v2, "io.weight", f"default {blkio_weight_to_io_weight(bio['weight'])}")
    for key, _, v2key in throttles:
        for dev in bio.get(key) or []:
            write(v2, "io.max", f"{dev['major']}:{dev['minor']} {v2key}={dev['rate']}")


def _hugepages(manager: CgroupManager, limits: list[dict[str, Any]]) -> None:
    for limit in limits:
        size = limit["pageSize"]
        v1 = _v1_dir(manager, "hugetlb")
        if v1:
            write(v1, f"hugetlb.{size}.limit_in_bytes", limit["limit"])
            continue
        v2 = _v2_dir(manager, "hugetlb")
        if v2 is None:
            raise RuntimeFailure("linux.resources.hugepageLimits: no hugetlb controller")
        write(v2, f"hugetlb.{size}.max", limit["limit"])


def _network(manager: CgroupManager, net: dict[str, Any]) -> None:
    if not net:
        return
    if net.get("classID") is not None:
        target = _v1_dir(manager, "net_cls")
        if target is None:
            raise RuntimeFailure("linux.resources.network.classID: no net_cls controller on "
                                 "this host")
        write(target, "net_cls.classid", net["classID"])
    for prio in net.get("priorities") or []:
        target = _v1_dir(manager, "net_prio")
        if target is None:
            raise RuntimeFailure("linux.resources.network.priorities: no net_prio controller "
                                 "on this host")
        write(target, "net_prio.ifpriomap", f"{prio['name']} {prio['priority']}")


def _unified(manager: CgroupManager, unified: dict[str, str]) -> None:
    if not unified:
        return
    v2 = manager.paths.get("")
    if not v2:
        raise RuntimeFailure("linux.resources.unified: needs a cgroup v2 (unified) hierarchy")
    for key, value in unified.items():
        if "/" in key or key.startswith("."):
            raise RuntimeFailure(f"linux.resources.unified: invalid key {key!r}")
        if not os.path.exists(os.path.join(v2, key)):
            raise RuntimeFailure(f"linux.resources.unified.{key}: no such file in {v2} (its "
                                 "controller is not on the unified hierarchy here)")
        write(v2, key, value)
