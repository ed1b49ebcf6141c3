"""Create, join and remove a container's cgroups on every mounted hierarchy.

One manager serves v1, v2 and hybrid hosts: each hierarchy gets the same relative path, the
container's processes are added to each, and destroy removes only the directories this manager
created (recorded in state), deepest first.
"""

from __future__ import annotations

import _signal  # the C module: `signal` imports enum (~10 ms on every command)
import errno
import os
import time

from ociruntime.cgroups.layout import Hierarchy, discover, own_cgroups
from ociruntime.errors import RuntimeFailure

CREATED_KEY = "_created"


class CgroupPermissionError(RuntimeFailure):
    """The cgroup hierarchy is not writable by us (rootless without delegation)."""


def resolve_relative_path(cgroups_path: str | None, container_id: str) -> str | None:
    """The container's cgroup path below each hierarchy root; None means 'relative to ours'.

    Absolute `linux.cgroupsPath` is taken from the hierarchy root; a relative one is joined to
    the runtime's own cgroup (as runc does); empty means ``/pyrunc/<id>``.
    """
    if not cgroups_path:
        return f"/pyrunc/{container_id}"
    if cgroups_path.startswith("/"):
        return os.path.normpath(cgroups_path)
    return None


class CgroupManager:
    """The container's cgroup directories, keyed by hierarchy key ('' = unified)."""

    def __init__(self, paths: dict[str, str], created: list[str] | None = None,
                 shared_parent: bool = False) -> None:
        self.paths = paths
        self.created = created or []
        # the default /pyrunc/<id>: /pyrunc is pyrunc's own and is removed when it empties,
        # whichever container made it
        self.shared_parent = shared_parent

    @classmethod
    def for_config(cls, cgroups_path: str | None, container_id: str) -> CgroupManager:
        """Work out (not yet create) the container's cgroup directory in each hierarchy."""
        if cgroups_path and (":" in cgroups_path and not cgroups_path.startswith("/")):
            raise RuntimeFailure(
                f"invalid cgroupsPath {cgroups_path!r}: systemd slice:prefix:name paths need "
                "--systemd-cgroup, which pyrunc does not support yet")
        hierarchies = discover()
        rel = resolve_relative_path(cgroups_path, container_id)
        own = own_cgroups() if rel is None else {}
        paths: dict[str, str] = {}
        for h in hierarchies:
            if rel is not None:
                inner = rel
            else:
                base = own.get(h.key, "/")
                inner = os.path.normpath(os.path.join(base, cgroups_path or ""))
            if h.root != "/" and inner.startswith(h.root):
                inner = inner[len(h.root):] or "/"
            full = os.path.normpath(h.mountpoint + "/" + inner)
            if not full.startswith(h.mountpoint):
                raise RuntimeFailure(
                    f"invalid cgroupsPath {cgroups_path!r}: escapes {h.mountpoint}")
            paths[h.key] = full
        return cls(paths, shared_parent=not cgroups_path)

    @classmethod
    def from_state(cls, stored: dict[str, str]) -> CgroupManager:
        paths = {k: v for k, v in stored.items() if k != CREATED_KEY}
        created = [p for p in stored.get(CREATED_KEY, "").split("\n") if p]
        return cls(paths, created)

    def to_state(self) -> dict[str, str]:
        out = dict(self.paths)
        out[CREATED_KEY] = "\n".join(self.created)
        return out

    def plan(self) -> None:
        """Record the directories create() is about to make, before it makes any: create
        writes them into the state first, so a `pyrunc create` killed between the mkdirs and
        its state write still leaves delete --force a record of what to remove."""
        for path in self.paths.values():
            for d in _missing_dirs(path):
                if d not in self.created:
                    self.created.append(d)
            self._record_shared_parent(path)

    def create(self) -> bool:
        """mkdir -p every hierarchy's directory, remembering which ones we made (also when a
        mkdir fails: destroy then removes just those). True when that record differs from
        plan()'s (another process made a planned directory first)."""
        planned = list(self.created)
        self.created = []
        for key, path in self.paths.items():
            self._mkdir_all(path)
            if "cpuset" in key.split(","):
                _inherit_cpuset(path)
            if key == "":
                delegate_controllers(path)
            self._record_shared_parent(path)
        return sorted(self.created) != sorted(planned)

    def _record_shared_parent(self, path: str) -> None:
        """The default /pyrunc parent counts as ours whoever made it (removed once empty)."""
        parent = os.path.dirname(path)
        if self.shared_parent and parent not in self.created:
            self.created.insert(0, parent)

    def _mkdir_all(self, path: str) -> None:
        for attempt in range(5):
            missing = _missing_dirs(path)
            try:
                for d in missing:
                    try:
                        os.mkdir(d, 0o755)
                        self.created.append(d)
                    except FileExistsError:
                        pass
                return
            except FileNotFoundError:
                # a concurrent destroy removed a shared parent between our mkdirs: retry
                if attempt == 4:
                    raise
            except OSError as e:
                kind = CgroupPermissionError if e.errno in (
                    errno.EACCES, errno.EPERM, errno.EROFS) else RuntimeFailure
                raise kind(f"mkdir {d}: {os.strerror(e.errno or 0)}") from None

    def add(self, pid: int) -> None:
        """Move `pid` into the container's cgroup in every hierarchy."""
        for path in self.paths.values():
            target = os.path.join(path, "cgroup.procs")
            try:
                with open(target, "w") as f:
                    f.write(str(pid))
            except OSError as e:
                raise RuntimeFailure(
                    f"write {pid} to {target}: {os.strerror(e.errno or 0)}") from None

    def owns_leaves(self) -> bool:
        """True when every one of the container's cgroup directories was made by us."""
        made = set(self.created)
        return bool(self.paths) and all(p in made for p in self.paths.values())

    def pids(self) -> list[int]:
        """Every process in the container's cgroup and its sub-cgroups (from the first
        hierarchy that answers: pids, then unified, then the others)."""
        order = sorted(self.paths, key=lambda k: (k != "pids", k != "", k))
        for key in order:
            found: list[int] = []
            if not os.path.isdir(self.paths[key]):
                continue
            try:
                for directory, _, _ in os.walk(self.paths[key]):
                    with open(os.path.join(directory, "cgroup.procs")) as f:
                        found.extend(int(x) for x in f.read().split())
            except (OSError, ValueError):
                if not found:
                    continue
            return found
        return []

    def _freezer(self) -> tuple[str | None, str | None]:
        """(v1 freezer directory, v2 directory) — the one that freezes this container."""
        for key, path in self.paths.items():
            if key and "freezer" in key.split(","):
                return path, None
        return None, self.paths.get("") or None

    def frozen(self) -> bool:
        """True when the container's cgroup is frozen (or freezing)."""
        v1, v2 = self._freezer()
        if v1:
            return _read(os.path.join(v1, "freezer.state")) in ("FROZEN", "FREEZING")
        return bool(v2) and _read(os.path.join(v2, "cgroup.freeze")) == "1"

    def freeze(self, frozen: bool, timeout: float = 5.0) -> None:
        """Freeze or thaw every process (v1 freezer.state, v2 cgroup.freeze), and wait until
        the kernel reports it done; a freeze that does not finish is undone."""
        v1, v2 = self._freezer()
        if v1:
            target, want = os.path.join(v1, "freezer.state"), "FROZEN" if frozen else "THAWED"
            value, done = want, lambda: _read(target) == want
        elif v2:
            target, want = os.path.join(v2, "cgroup.freeze"), "1" if frozen else "0"
            value = want
            events = os.path.join(v2, "cgroup.events")
            done = lambda: f"frozen {want}" in (_read(events) or "").splitlines()  # noqa: E731
        else:
            raise RuntimeFailure("this container has no freezer cgroup")
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(target, "w") as f:  # v1: rewriting retries a stuck FREEZING
                    f.write(value)
            except OSError as e:
                raise RuntimeFailure(f"write {value} to {target}: "
                                     f"{os.strerror(e.errno or 0)}") from None
            if done():
                return
            if time.monotonic() > deadline:
                if frozen:
                    self.freeze(False, timeout)
                raise RuntimeFailure(f"{target}: the container did not become "
                                     f"{'frozen' if frozen else 'thawed'} in {timeout:g}s")
            time.sleep(0.001)

    def kill_all(self, sig: int) -> None:
        """Send `sig` to every process in the container's cgroups (`kill --all`).

        SIGKILL goes through v2's cgroup.kill where the kernel has it; otherwise the cgroup is
        frozen while its processes are listed and signalled, so none forks away unseen (as
        runc does), and thawed again unless it was paused before (thawed anyway for SIGKILL,
        which frozen v1 tasks only act on once thawed).
        """
        unified = self.paths.get("")
        was_frozen = self.frozen()
        if sig == _signal.SIGKILL and unified and os.path.exists(
                os.path.join(unified, "cgroup.kill")):
            try:
                with open(os.path.join(unified, "cgroup.kill"), "w") as f:
                    f.write("1")
                if was_frozen:  # a v1-frozen task dies only once thawed
                    self.freeze(False)
                return
            except (OSError, RuntimeFailure):
                pass  # fall back to signalling one by one
        try:
            if not was_frozen:
                self.freeze(True)
        except RuntimeFailure:
            pass  # no freezer: signal them unfrozen
        try:
            for pid in self.pids():
                if pid > 0:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
        finally:
            if not was_frozen or sig == _signal.SIGKILL:
                try:
                    self.freeze(False)
                except RuntimeFailure:
                    pass

    def destroy(self, timeout: float = 5.0) -> None:
        """Remove the directories we created, deepest first; retry while tasks drain."""
        deadline = time.monotonic() + timeout
        for d in sorted(set(self.created), key=lambda p: p.count("/"), reverse=True):
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    ours = d in self.paths.values()
                    if not ours and e.errno in (errno.EBUSY, errno.ENOTEMPTY, errno.EEXIST,
                                                errno.EACCES, errno.EPERM):
                        break  # a shared parent still in use, or not ours to remove (rootless)
                    if e.errno == errno.EBUSY and time.monotonic() < deadline:
                        time.sleep(0.005)
                        continue
                    raise RuntimeFailure(f"rmdir {d}: {os.strerror(e.errno)}") from None
        self.created = []


def _missing_dirs(path: str) -> list[str]:
    """`path` and its ancestors that do not exist yet, outermost first."""
    missing: list[str] = []
    probe = path
    while not os.path.isdir(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    return missing[::-1]


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def delegate_controllers(leaf: str) -> None:
    """cgroup v2: enable, in cgroup.subtree_control of every ancestor of `leaf` from the
    hierarchy's root down, each controller that ancestor offers, so the leaf gets them all (as
    runc does, whatever the config limits). One an ancestor cannot pass on (processes in a
    non-root ancestor, not delegated to us) is left out; a limit for it then fails naming it."""
    chain = []
    probe = os.path.dirname(leaf)
    while os.path.exists(os.path.join(probe, "cgroup.subtree_control")):
        chain.append(probe)
        if os.path.dirname(probe) == probe:
            break
        probe = os.path.dirname(probe)
    for directory in reversed(chain):
        offered = (_read(os.path.join(directory, "cgroup.controllers")) or "").split()
        enabled = (_read(os.path.join(directory, "cgroup.subtree_control")) or "").split()
        missing = [f"+{c}" for c in offered if c not in enabled]
        target = os.path.join(directory, "cgroup.subtree_control")
        for request in ([" ".join(missing)] + missing if len(missing) > 1 else missing):
            try:
                with open(target, "w") as f:
                    f.write(request)
                if " " in request:
                    break  # all at once worked
            except OSError:
                pass  # all at once failed: one by one


def _inherit_cpuset(path: str) -> None:
    """v1 cpuset: a new cgroup takes no tasks until cpus and mems are set; copy the parent's."""
    chain = []
    probe = path
    while os.path.exists(os.path.join(probe, "cpuset.cpus")):
        chain.append(probe)
        probe = os.path.dirname(probe)
    for d in reversed(chain[:-1]):
        for name in ("cpuset.cpus", "cpuset.mems"):
            target = os.path.join(d, name)
            with open(target) as f:
                if f.read().strip():
                    continue
            with open(os.path.join(os.path.dirname(d), name)) as f:
                value = f.read().strip()
            with open(target, "w") as f:
                f.write(value)


def hierarchies() -> list[Hierarchy]:
    """Re-exported for callers that only need the layout."""
    return discover()
