"""Write `linux.resources` into the container's cgroups, on whichever hierarchy holds each
controller (v1 controller hierarchies, the v2 unified one, or both on a hybrid host).

Conversions between v1 and v2 values are the ones runc documents (cgroup-v2.md of
opencontainers/cgroups): cpu shares -> weight, blkio weight -> io.weight, memory swap -> v2
swap.max (swap minus limit). On v2, like runc 1.1, memory swappiness/kernelTCP/disableOOMKiller
and the cpu realtime fields have no v2 file and are not applied.
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
    """The container's unified cgroup if `controller` is enabled in it, else None."""
    path = manager.paths.get("")
    if not path:
        return None
    try:
        with open(os.path.join(path, "cgroup.controllers")) as f:
            available = f.read().split()
    except OSError:
        return None
    return path if controller in available else None


def _no_controller(manager: CgroupManager, field: str, controller: str) -> RuntimeFailure:
    """The error for a limit whose controller the container's cgroups do not have."""
    v2 = manager.paths.get("")
    where = f"enabled in {v2} (its cgroup.controllers)" if v2 else "on this host"
    return RuntimeFailure(f"linux.resources.{field}: no {controller} cgroup controller {where}")


def swap_to_v2(swap: int, limit: int) -> str | None:
    """v2 memory.swap.max for the spec's `swap` (memory+swap, as v1's memsw) and memory
    `limit`; 0 is unset and -1 no limit for both. None: leave memory.swap.max as it is."""
    if swap == -1 or (limit == -1 and swap == 0):
        return MAX
    if swap == 0:
        return None
    if limit in (0, -1):
        raise RuntimeFailure(f"linux.resources.memory.swap={swap}: a swap limit needs a memory "
                             "limit (swap is memory+swap)")
    if limit < 0 or swap < limit:
        raise RuntimeFailure(f"linux.resources.memory.swap={swap}: must be >= memory.limit="
                             f"{limit} (swap is memory+swap)")
    return str(swap - limit)


def write(directory: str, name: str, value: object) -> None:
    """Write one cgroup file; the error names the file and the value."""
    path = os.path.join(directory, name)
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except OSError as e:
        raise RuntimeFailure(f"write {name}={value} in {directory}: "
                             f"{e.strerror or e}") from None


def _enable_v2_controllers(manager: CgroupManager) -> None:
    """Let the container's cgroup use every controller (subtree_control on every ancestor);
    create does it too, this covers containers created before a controller was offered."""
    leaf = manager.paths.get("")
    if leaf:
        from ociruntime.cgroups.manager import delegate_controllers

        delegate_controllers(leaf)


def apply_resources(manager: CgroupManager, resources: dict[str, Any], *,
                    initial: bool, pids: bool = True) -> None:
    """Apply every resource the config sets; RuntimeFailure naming the file on rejection.

    `pids=False` leaves the pids limit out (create sets it with apply_pids_limit once only
    the init is left in the cgroup: its bootstrap forks the init there).
    """
    if not resources or not manager.paths:
        return
    if initial:
        _enable_v2_controllers(manager)
    _memory(manager, resources.get("memory") or {})
    _cpu(manager, resources.get("cpu") or {})
    if pids:
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
    if limit and swap and 0 < swap < limit:
        raise RuntimeFailure(f"linux.resources.memory.swap={swap}: must be >= memory.limit="
                             f"{limit} (swap is memory+swap)")
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
    if not any(mem.get(k) for k in ("limit", "swap", "reservation")):
        return  # runc's zeros mean unset; the v1-only fields have no v2 file
    v2 = _v2_dir(manager, "memory")
    if v2 is None:
        raise _no_controller(manager, "memory", "memory")
    swap_max = swap_to_v2(swap or 0, limit or 0)
    # without swap accounting (no memory.swap.max) there is no swap to limit
    if swap_max is not None and os.path.exists(os.path.join(v2, "memory.swap.max")):
        write(v2, "memory.swap.max", swap_max)
    if limit:
        write(v2, "memory.max", MAX if limit < 0 else limit)
    if mem.get("reservation"):
        write(v2, "memory.low", MAX if mem["reservation"] < 0 else mem["reservation"])


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
        if v2 is None and (any(cpu.get(k) for k in ("shares", "quota", "period")) or
                           any(cpu.get(k) is not None for k in ("burst", "idle"))):
            raise _no_controller(manager, "cpu", "cpu")
        if v2:
            if cpu.get("shares"):
                write(v2, "cpu.weight", shares_to_weight(cpu["shares"]))
            quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
            if quota or period:  # 0 is unset; a quota <= 0 is no limit
                write(v2, "cpu.max", f"{quota if quota > 0 else MAX} {period or 100000}")
            if cpu.get("burst") is not None:
                write(v2, "cpu.max.burst", cpu["burst"])
            if cpu.get("idle") is not None:
                write(v2, "cpu.idle", cpu["idle"])
    for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if cpu.get(key):
            target = _v1_dir(manager, "cpuset") or _v2_dir(manager, "cpuset")
            if target is None:
                raise _no_controller(manager, f"cpu.{key}", "cpuset")
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


def apply_pids_limit(manager: CgroupManager, resources: dict[str, Any]) -> None:
    """linux.resources.pids alone (see apply_resources)."""
    if manager.paths:
        _pids(manager, resources.get("pids") or {})


def _pids(manager: CgroupManager, pids: dict[str, Any]) -> None:
    if "limit" not in pids:
        return
    limit = pids["limit"]
    target = _v1_dir(manager, "pids") or _v2_dir(manager, "pids")
    if target is None:
        raise _no_controller(manager, "pids", "pids")
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
        raise _no_controller(manager, "blockIO", "io")
    _v2_io_weights(v2, bio)
    for key, _, v2key in throttles:
        for dev in bio.get(key) or []:
            write(v2, "io.max", f"{dev['major']}:{dev['minor']} {v2key}={dev['rate']}")


def _v2_io_weights(v2: str, bio: dict[str, Any]) -> None:
    """blockIO weight and weightDevice on v2: BFQ's io.bfq.weight takes blkio's own values
    (per device too, since kernel 5.4); otherwise io.weight (iocost) the converted weight."""
    bfq = os.path.join(v2, "io.bfq.weight")
    has_bfq = os.path.exists(bfq)
    if bio.get("weight"):
        if has_bfq:
            write(v2, "io.bfq.weight", bio["weight"])
        elif os.path.exists(os.path.join(v2, "io.weight")):
            write(v2, "io.weight", f"default {blkio_weight_to_io_weight(bio['weight'])}")
        else:
            raise RuntimeFailure("linux.resources.blockIO.weight: this kernel's io controller "
                                 "has no io.weight or io.bfq.weight (no iocost, no BFQ)")
    devices = [d for d in bio.get("weightDevice") or [] if d.get("weight")]
    if devices:
        try:
            with open(bfq) as f:
                per_device = not f.read().strip().isdigit()  # "default N\n" since 5.4
        except OSError:
            per_device = False
        if not per_device:
            raise RuntimeFailure("linux.resources.blockIO.weightDevice: this kernel's io "
                                 "controller has no per-device io.bfq.weight")
        for dev in devices:
            write(v2, "io.bfq.weight", f"{dev['major']}:{dev['minor']} {dev['weight']}")


def _hugepages(manager: CgroupManager, limits: list[dict[str, Any]]) -> None:
    for limit in limits:
        size = limit["pageSize"]
        v1 = _v1_dir(manager, "hugetlb")
        if v1:
            write(v1, f"hugetlb.{size}.limit_in_bytes", limit["limit"])
            continue
        v2 = _v2_dir(manager, "hugetlb")
        if v2 is None:
            raise _no_controller(manager, "hugepageLimits", "hugetlb")
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
        controller, dot, _ = key.partition(".")
        if "/" in key or not controller or not dot:
            raise RuntimeFailure(f"linux.resources.unified: invalid key {key!r} (a file name "
                                 "CONTROLLER.PARAMETER)")
        if not os.path.exists(os.path.join(v2, key)):
            why = (f"no {controller} controller enabled there" if controller != "cgroup"
                   and _v2_dir(manager, controller) is None else "no such file")
            raise RuntimeFailure(f"linux.resources.unified.{key}: {why} ({v2})")
        write(v2, key, value)
