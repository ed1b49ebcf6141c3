"""Per-container state: the state directory, its lock, state.json, and status derivation.

Layout under the state root (``--root``, default /run/pyrunc)::

    <root>/<id>/state.json   what create recorded (pid, start time, bundle, cgroups, config)
    <root>/<id>/exec.sock    present while the container is `created`; start connects to it
    <root>/<id>/.lock        flock()ed by every command that changes the container

Status is derived, as runc does: init dead (or its pid reused) -> stopped; start socket ->
created; cgroup frozen -> paused; otherwise running.
"""

from __future__ import annotations

import fcntl
import os
import time

from ociruntime.errors import ContainerNotFound, RuntimeFailure
from ociruntime.jsonio import dumps, loads
from ociruntime.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


DEFAULT_ROOT = "/run/pyrunc"
STATE_FILE = "state.json"
START_SOCKET = "exec.sock"
LOCK_NAME = ".lock"

_ID_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-."
)


def validate_id(container_id: str) -> None:
    """Reject IDs runc rejects: empty, path separators, `.`/`..`, odd characters."""
    if not container_id:
        raise RuntimeFailure("container id cannot be empty")
    if container_id in (".", "..") or not _ID_CHARS.issuperset(container_id) or len(
        container_id
    ) > 1024:
        raise RuntimeFailure(f"invalid container id format: {container_id[:80]}")


@record
class ContainerState:
    """What `create` recorded about one container."""

    id: str
    pid: int
    pid_start: int
    bundle: str
    rootfs: str
    created: str
    oci_version: str
    owner: str = ""
    annotations: dict[str, str] = {}
    cgroup_paths: dict[str, str] = {}
    config: dict[str, Any] = {}
    creator: int = 0
    creator_start: int = 0
    host_mounts: list[str] = []  # made in the runtime's mount namespace; delete detaches them

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pid": self.pid,
            "pid_start": self.pid_start,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "ociVersion": self.oci_version,
            "owner": self.owner,
            "annotations": self.annotations,
            "cgroup_paths": self.cgroup_paths,
            "config": self.config,
            "creator": self.creator,
            "creator_start": self.creator_start,
            "host_mounts": self.host_mounts,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ContainerState:
        return cls(
            id=doc["id"],
            pid=int(doc["pid"]),
            pid_start=int(doc.get("pid_start", 0)),
            bundle=doc["bundle"],
            rootfs=doc["rootfs"],
            created=doc["created"],
            oci_version=doc.get("ociVersion", ""),
            owner=doc.get("owner", ""),
            annotations=doc.get("annotations") or {},
            cgroup_paths=doc.get("cgroup_paths") or {},
            config=doc.get("config") or {},
            creator=int(doc.get("creator", 0)),
            creator_start=int(doc.get("creator_start", 0)),
            host_mounts=list(doc.get("host_mounts") or []),
        )


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    rest = raw[raw.rfind(b")") + 2 :].split()
    if rest[0] in (b"Z", b"X"):
        return None
    return int(rest[19])


def utc_now() -> str:
    """RFC 3339 timestamp with nanoseconds, like Go's time.Time JSON encoding."""
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class StateDir:
    """One container's state directory under the state root."""

    def __init__(self, root: str, container_id: str) -> None:
        validate_id(container_id)
        self.root = root
        self.id = container_id
        self.path = os.path.join(root, container_id)
        self._lock_fd: int | None = None

    @property
    def start_socket(self) -> str:
        return os.path.join(self.path, START_SOCKET)

    @property
    def state_file(self) -> str:
        return os.path.join(self.path, STATE_FILE)

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def claim(self) -> None:
        """Create the directory; exactly one concurrent create of an ID wins."""
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            raise RuntimeFailure(f"container with id exists: {self.id}") from None

    def lock(self) -> None:
        """Take the container's exclusive lock (blocks while another command holds it)."""
        try:
            fd = os.open(os.path.join(self.path, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                         0o600)
        except FileNotFoundError:
            raise ContainerNotFound(self.id) from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def write(self, state: ContainerState) -> None:
        """Write state.json atomically (a temp file put in its place)."""
        tmp = os.path.join(self.path, f".{STATE_FILE}.tmp")
        with open(tmp, "w") as f:
            f.write(dumps(state.to_json()))
        swap_in(tmp, self.state_file)

    def load(self) -> ContainerState:
        try:
            with open(self.state_file) as f:
                doc = loads(f.read())
        except FileNotFoundError:
            raise ContainerNotFound(self.id) from None
        except (OSError, ValueError) as e:
            raise RuntimeFailure(f"state of container {self.id} is unreadable: {e}") from None
        try:
            return ContainerState.from_json(doc)
        except (KeyError, TypeError, ValueError) as e:
            raise RuntimeFailure(f"state of container {self.id} is corrupt: {e}") from None

    def remove(self) -> None:
        """Remove the state directory and everything in it."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            pass


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def swap_in(tmp: str, path: str) -> None:
    """Put `tmp` in the place of `path` atomically. Over an existing file the two are
    exchanged and the old one unlinked, not renamed over: ext4 forces the data of a file
    renamed over another to disk (auto_da_alloc), and unlinking it later (delete) then cost
    ~2 ms here against ~0.1 ms."""
    from ociruntime.linux.kernel import call

    try:
        call("renameat2", _AT_FDCWD, os.fsencode(tmp), _AT_FDCWD, os.fsencode(path),
             _RENAME_EXCHANGE)
    except OSError:  # nothing to exchange with yet, or a filesystem without the flag
        os.rename(tmp, path)
        return
    os.unlink(tmp)


def init_alive(state: ContainerState) -> bool:
    """True while the container's init runs (not dead, not a zombie, pid not reused)."""
    if state.pid <= 0:
        return False
    start = process_start_time(state.pid)
    return start is not None and (state.pid_start == 0 or start == state.pid_start)


def is_frozen(state: ContainerState) -> bool:
    """True when the container's freezer says it is frozen (v1 freezer or v2 cgroup.freeze)."""
    path = state.cgroup_paths.get("freezer")
    if path:
        try:
            with open(os.path.join(path, "freezer.state")) as f:
                return f.read().strip() in ("FROZEN", "FREEZING")
        except OSError:
            return False
    path = state.cgroup_paths.get("")
    if path:
        try:
            with open(os.path.join(path, "cgroup.freeze")) as f:
                return f.read().strip() == "1"
        except OSError:
            return False
    return False


def _still_waiting(pid: int) -> bool:
    """True when the init has not exec'd yet (it names itself pyrunc-init until then)."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip() == b"pyrunc-init"
    except OSError:
        return False


def derive_status(state_dir: StateDir, state: ContainerState) -> str:
    """creating / created / running / paused / stopped, derived from the live system.

    A state still naming its creator is `creating` while that `pyrunc create` runs, and
    `stopped` if it died half way (delete --force then removes what it left).
    """
    if state.creator:
        start = process_start_time(state.creator)
        return "creating" if start is not None and start == state.creator_start else "stopped"
    if not init_alive(state):
        return "stopped"
    if is_frozen(state):  # checked first: runc pauses created containers too
        return "paused"
    if os.path.exists(state_dir.start_socket) or _still_waiting(state.pid):
        return "created"
    return "running"


def list_ids(root: str) -> list[str]:
    """IDs of every container with a state dir under `root`, sorted."""
    try:
        return sorted(n for n in os.listdir(root) if not n.startswith("."))
    except FileNotFoundError:
        return []
