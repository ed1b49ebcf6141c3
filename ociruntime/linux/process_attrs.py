"""Per-process kernel attributes from the config: scheduler, I/O priority, personality, CPU
affinity and NUMA memory policy. Each is applied by the process itself just before execve."""

from __future__ import annotations

import os
import sys

from ociruntime.errors import RuntimeFailure, SyscallError
from ociruntime.linux.kernel import call

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SCHED_POLICIES = {
    "SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4,
    "SCHED_IDLE": 5, "SCHED_DEADLINE": 6,
}
SCHED_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20, "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}
MEMPOLICY_MODES = {
    "MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
    "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6,
}
MEMPOLICY_FLAGS = {
    "MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14,
    "MPOL_F_STATIC_NODES": 1 << 15,
}


def parse_cpu_list(text: str) -> set[int]:
    """`0-3,7` -> {0, 1, 2, 3, 7}; ValueError on anything else."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        first, last = int(lo), int(hi) if sep else int(lo)
        if first < 0 or last < first:
            raise ValueError(f"bad cpu range {part!r}")
        cpus.update(range(first, last + 1))
    return cpus


def set_scheduler(sched: dict[str, Any]) -> None:
    """sched_setattr(2) from process.scheduler."""
    policy = SCHED_POLICIES.get(sched.get("policy", ""))
    if policy is None:
        raise RuntimeFailure(f"process.scheduler.policy: unknown policy {sched.get('policy')!r}")
    flags = 0
    for name in sched.get("flags") or []:
        if name not in SCHED_FLAGS:
            raise RuntimeFailure(f"process.scheduler.flags: unknown flag {name!r}")
        flags |= SCHED_FLAGS[name]
    order = sys.byteorder
    # struct sched_attr: u32 size, u32 policy, u64 flags, s32 nice, u32 priority,
    # u64 runtime, u64 deadline, u64 period (48 bytes)
    attr = b"".join((
        (48).to_bytes(4, order), policy.to_bytes(4, order), flags.to_bytes(8, order),
        int(sched.get("nice", 0)).to_bytes(4, order, signed=True),
        int(sched.get("priority", 0)).to_bytes(4, order),
        *(int(sched.get(k, 0)).to_bytes(8, order) for k in ("runtime", "deadline", "period")),
    ))
    try:
        call("sched_setattr", 0, attr, 0)
    except OSError as e:
        raise SyscallError("sched_setattr", sched.get("policy", ""), e.errno) from None


def set_io_priority(ioprio: dict[str, Any]) -> None:
    """ioprio_set(2) from process.ioPriority (who = this process)."""
    klass = IOPRIO_CLASSES.get(ioprio.get("class", ""))
    if klass is None:
        raise RuntimeFailure(f"process.ioPriority.class: unknown class {ioprio.get('class')!r}")
    value = (klass << 13) | int(ioprio.get("priority", 0))
    try:
        call("ioprio_set", 1, 0, value)
    except OSError as e:
        raise SyscallError("ioprio_set", ioprio.get("class", ""), e.errno) from None


def set_personality(personality: dict[str, Any]) -> None:
    """personality(2) from linux.personality (domain; flags are not defined by the spec yet)."""
    domain = PERSONALITY_DOMAINS.get(personality.get("domain", ""))
    if domain is None:
        raise RuntimeFailure(
            f"linux.personality.domain: unknown domain {personality.get('domain')!r}")
    try:
        call("personality", domain)
    except OSError as e:
        raise SyscallError("personality", personality.get("domain", ""), e.errno) from None


def set_cpu_affinity(cpus: str, field: str) -> None:
    """sched_setaffinity from process.execCPUAffinity.initial/final."""
    try:
        os.sched_setaffinity(0, parse_cpu_list(cpus))
    except (ValueError, OSError) as e:
        raise RuntimeFailure(f"process.execCPUAffinity.{field} {cpus!r}: {e}") from None


def set_memory_policy(policy: dict[str, Any]) -> None:
    """set_mempolicy(2) from linux.memoryPolicy."""
    mode = MEMPOLICY_MODES.get(policy.get("mode", ""))
    if mode is None:
        raise RuntimeFailure(f"linux.memoryPolicy.mode: unknown mode {policy.get('mode')!r}")
    for name in policy.get("flags") or []:
        if name not in MEMPOLICY_FLAGS:
            raise RuntimeFailure(f"linux.memoryPolicy.flags: unknown flag {name!r}")
        mode |= MEMPOLICY_FLAGS[name]
    try:
        nodes = parse_cpu_list(policy.get("nodes") or "")
    except ValueError as e:
        raise RuntimeFailure(f"linux.memoryPolicy.nodes: {e}") from None
    maxnode = max(nodes) + 2 if nodes else 0
    words = (maxnode + 63) // 64 or 1
    bits = 0
    for node in nodes:
        bits |= 1 << node
    mask = bits.to_bytes(8 * words, sys.byteorder)  # an array of unsigned long
    try:
        call("set_mempolicy", mode, mask if nodes else None, maxnode)
    except OSError as e:
        raise SyscallError("set_mempolicy", policy.get("mode", ""), e.errno) from None


def apply_before_exec(process: dict[str, Any], linux: dict[str, Any]) -> None:
    """Everything this module handles, in runc's order (personality before seccomp)."""
    if process.get("scheduler"):
        set_scheduler(process["scheduler"])
    if process.get("ioPriority"):
        set_io_priority(process["ioPriority"])
    if linux.get("personality"):
        set_personality(linux["personality"])
    if linux.get("memoryPolicy"):
        set_memory_policy(linux["memoryPolicy"])
    final = (process.get("execCPUAffinity") or {}).get("final")
    if final:
        set_cpu_affinity(final, "final")


def uses_any(process: dict[str, Any], linux: dict[str, Any]) -> bool:
    """True when the config asks for any attribute handled here (so the module is needed)."""
    return bool(process.get("scheduler") or process.get("ioPriority") or linux.get("personality")
                or linux.get("memoryPolicy") or process.get("execCPUAffinity"))
