"""Leftover removal after one runtime-tools validation program: containers in its private state
root, processes of its process group, cgroups named by its configs, mounts under its temp dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

CGROUP_FS = ("cgroup", "cgroup2")


def _mountinfo() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, super options) of every mount in our mount namespace."""
    rows = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        point = left.split()[4].encode().decode("unicode_escape")
        fields = right.split()
        rows.append((point, fields[0], set(fields[-1].split(","))))
    return rows


def delete_containers(runtime: str, state_root: Path, timeout: float = 30) -> list[str]:
    """`delete --force` every container left in the test's private state root; returns their ids."""
    if not state_root.is_dir():
        return []
    ids = sorted(p.name for p in state_root.iterdir() if p.is_dir())
    for cid in ids:
        subprocess.run([runtime, "--root", str(state_root), "delete", "--force", cid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=timeout, check=False)
    return ids


def kill_process_group(pgid: int) -> list[int]:
    """SIGKILL the processes still in the program's process group (hooks, stray children)."""
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except ProcessLookupError:
                pass
    return killed


def config_cgroup_paths(config_dir: Path) -> set[str]:
    """The explicit `linux.cgroupsPath` values of the configs the runtime wrapper saved."""
    paths = set()
    for path in sorted(config_dir.glob("*.json")):
        try:
            value = json.loads(path.read_text()).get("linux", {}).get("cgroupsPath")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, str) and value.strip("/") and ":" not in value:
            paths.add(value)
    return paths


def _own_cgroups() -> dict[str, str]:
    """Controller list (as in /proc/self/cgroup) -> our cgroup path in that hierarchy."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        own[controllers] = path
    return own


def _remove_cgroup_tree(top: Path) -> None:
    """Kill what is left in a cgroup tree and rmdir it, deepest first."""
    dirs = sorted((d for d, _, _ in os.walk(top)), key=lambda d: d.count("/"), reverse=True)
    for d in dirs:
        try:
            for pid in Path(d, "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        except OSError:
            pass
    for d in dirs:
        for _ in range(50):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


def remove_cgroups(cgroup_paths: set[str]) -> list[str]:
    """Remove the cgroups a test's configs named (absolute, or relative to our own cgroup or to
    the hierarchy root), then the empty parents those paths created."""
    removed = []
    own = _own_cgroups()
    for mount, fs, opts in _mountinfo():
        if fs not in CGROUP_FS:
            continue
        bases = {Path(mount)}
        for controllers, path in own.items():
            if (fs == "cgroup2" and not controllers) or (
                    fs == "cgroup" and controllers and set(controllers.split(",")) <= opts):
                bases.add(Path(mount) / path.lstrip("/"))
        for base in sorted(bases, key=lambda b: len(str(b)), reverse=True):
            for cg in cgroup_paths:
                parts = Path(cg.strip("/")).parts
                leaf = base.joinpath(*parts)
                if leaf.is_dir():
                    _remove_cgroup_tree(leaf)
                    removed.append(str(leaf))
                for depth in range(len(parts) - 1, 0, -1):
                    try:
                        os.rmdir(base.joinpath(*parts[:depth]))
                    except OSError:
                        break
    return removed


def unmount_under(top: Path) -> list[str]:
    """Lazily unmount every mount point at or below `top`, deepest first."""
    prefix = str(top).rstrip("/") + "/"
    points = [p for p, _, _ in _mountinfo() if p == str(top) or p.startswith(prefix)]
    for point in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
    return points
