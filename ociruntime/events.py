"""`pyrunc events`: a container's statistics and OOM notices as JSON lines, like runc's.

`--stats` prints one stats event and exits. Otherwise a stats event is printed every
`--interval` (Go duration syntax, default 5s) and an `oom` event whenever the kernel OOM-kills
in the container's memory cgroup, until the container stops. Only JSON goes to stdout.
"""

from __future__ import annotations

import os
import time

from ociruntime.errors import RuntimeFailure
from ociruntime.jsonio import dumps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ociruntime.cgroups.manager import CgroupManager
    from ociruntime.state import ContainerState

_DURATION_UNITS = (("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0),
                   ("m", 60.0), ("h", 3600.0))
OOM_POLL = 0.1  # seconds between looks at the OOM counter


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string: 5s, 100ms, 1m30s, 1.5h."""
    rest, total = text.strip(), 0.0
    if not rest:
        raise RuntimeFailure(f"invalid value {text!r} for flag --interval: empty duration")
    while rest:
        digits = len(rest) - len(rest.lstrip("0123456789."))
        number, rest = rest[:digits], rest[digits:]
        unit = next((u for u, _ in sorted(_DURATION_UNITS, key=lambda x: -len(x[0]))
                     if rest.startswith(u)), None)
        try:
            value = float(number)
        except ValueError:
            value = -1.0
        if unit is None or value < 0:
            raise RuntimeFailure(f"invalid value {text!r} for flag --interval: "
                                 "time: invalid duration")
        total += value * dict(_DURATION_UNITS)[unit]
        rest = rest[len(unit):]
    if total <= 0:
        raise RuntimeFailure("duration interval must be greater than 0")
    return total


def _running_state(root: str, container_id: str) -> tuple[ContainerState, CgroupManager]:
    from ociruntime.cgroups.manager import CgroupManager
    from ociruntime.container import load

    _, state, status = load(root, container_id)
    if status in ("stopped", "creating"):
        raise RuntimeFailure(f"container with id {container_id} is not running")
    return state, CgroupManager.from_state(state.cgroup_paths)


def _emit(kind: str, container_id: str, data: object = None) -> None:
    event: dict[str, object] = {"type": kind, "id": container_id}
    if data is not None:
        event["data"] = data
    os.write(1, (dumps(event) + "\n").encode())


def stats_once(root: str, container_id: str) -> None:
    """`events --stats`: one stats event."""
    from ociruntime.cgroups.stats import collect

    state, manager = _running_state(root, container_id)
    _emit("stats", container_id, collect(manager, state.pid))


def _finished(state: ContainerState, manager: CgroupManager) -> bool:
    """The container has stopped: its init is gone and no process is left in its cgroup
    (a cgroup pyrunc did not create may hold other processes: the init alone counts then)."""
    from ociruntime.state import init_alive

    if init_alive(state):
        return False
    return not manager.owns_leaves() or not manager.pids()


def follow(root: str, container_id: str, interval: float) -> None:
    """`events`: stats every `interval` (the first after one interval, as runc's ticker) and
    an oom event per OOM kill as it happens, until the container has stopped."""
    from ociruntime.cgroups.stats import collect, oom_kills

    state, manager = _running_state(root, container_id)
    seen_ooms = oom_kills(manager)
    next_stats = time.monotonic() + interval
    while True:
        finished = _finished(state, manager)
        ooms = oom_kills(manager)  # read after the check: an OOM kill that ended it counts
        for _ in range(max(0, ooms - seen_ooms)):
            _emit("oom", container_id)
        seen_ooms = max(seen_ooms, ooms)
        if finished:
            return
        now = time.monotonic()
        if now >= next_stats:
            _emit("stats", container_id, collect(manager, state.pid))
            next_stats = max(next_stats + interval, now)
        time.sleep(max(0.0, min(OOM_POLL, next_stats - time.monotonic())))
