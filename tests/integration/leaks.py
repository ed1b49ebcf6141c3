"""What a container test can leave behind, snapshotted before and compared after.

Mounts (this mount namespace), cgroup directories (every hierarchy), state directories under
the runtime roots, processes in other PID namespaces, children of the test process, and open
fds of the test process.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def mounts() -> set[str]:
    """Mount points of this mount namespace."""
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def cgroup_dirs() -> set[str]:
    """Every cgroup directory below every mounted hierarchy (not the roots)."""
    found: set[str] = set()
    for top in CGROUP_ROOT.iterdir():
        if not top.is_dir():
            continue
        for base, dirs, _ in os.walk(top):
            for d in dirs:
                found.add(os.path.join(base, d))
    return found


def _pid_ns(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def foreign_pid_ns_processes() -> set[int]:
    """Processes whose PID namespace differs from ours (container processes)."""
    mine = _pid_ns("self")
    result = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ns = _pid_ns(entry)
            if ns is not None and ns != mine:
                result.add(int(entry))
    return result


def children() -> set[int]:
    """Live (non-zombie) children of this test process."""
    result = set()
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            result.add(int(entry))
    return result


def open_fds() -> set[int]:
    """The test process's open fds."""
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


@dataclass
class Snapshot:
    """Everything that could leak, at one moment."""

    mounts: set[str] = field(default_factory=mounts)
    cgroups: set[str] = field(default_factory=cgroup_dirs)
    foreign: set[int] = field(default_factory=foreign_pid_ns_processes)
    children: set[int] = field(default_factory=children)
    fds: set[int] = field(default_factory=open_fds)


def diff(before: Snapshot, roots: list[Path]) -> list[str]:
    """Describe what appeared since `before` (after a short grace period for exits)."""
    for _ in range(50):
        after = Snapshot()
        if not _problems(before, after, roots):
            return []
        time.sleep(0.05)
    return _problems(before, after, roots)


def _problems(before: Snapshot, after: Snapshot, roots: list[Path]) -> list[str]:
    found = []
    if extra := after.mounts - before.mounts:
        found.append(f"mounts left: {sorted(extra)}")
    if extra := after.cgroups - before.cgroups:
        found.append(f"cgroups left: {sorted(extra)}")
    if extra := after.foreign - before.foreign:
        found.append(f"container processes left: {sorted(extra)}")
    if extra := after.children - before.children:
        found.append(f"child processes left: {sorted(extra)}")
    if extra := after.fds - before.fds:
        found.append(f"fds left open in the test process: {sorted(extra)}")
    for root in roots:
        if root.is_dir() and (left := sorted(p.name for p in root.iterdir())):
            found.append(f"state left in {root}: {left}")
    return found


def clean_up(before: Snapshot, roots: list[Path]) -> None:
    """Remove what a failing test leaked, so one failure does not cascade."""
    after = Snapshot()
    for pid in (after.foreign - before.foreign) | (after.children - before.children):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.1)
    for mp in sorted(after.mounts - before.mounts, key=len, reverse=True):
        os.system(f"umount -l '{mp}' 2>/dev/null")
    for d in sorted(after.cgroups - before.cgroups, key=lambda p: p.count("/"), reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass
    for fd in after.fds - before.fds:
        try:
            os.close(fd)
        except OSError:
            pass
