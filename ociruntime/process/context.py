"""InitContext: everything the container side needs, made by the parent before the fork.

Apart from init.py so that the parent can make one without loading the container-side code:
the forked child loads that itself, while the parent prepares the host side (cgroups, state).
"""

from __future__ import annotations

from ociruntime.hooks import hooks_of
from ociruntime.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from typing import Any

    from ociruntime.linux.rootfs_plan import RootfsPlan


@record
class InitContext:
    """Everything the container side needs, prepared by the parent before fork."""

    config: dict[str, Any]
    plan: RootfsPlan
    new_namespaces: list[str]
    join_fds: dict[str, int]
    start_fd: int
    preserve_fds: int = 0
    seccomp: Any = None
    container_id: str = ""
    host_pid: int = 0
    runtime_pid: int = 0
    bundle: str = ""
    new_keyring: bool = True
    console: _socket.socket | None = None
    env: list[str] = []
    enters_cgroups: bool = False  # the bootstrap enters them itself (parent.py)

    @property
    def process(self) -> dict[str, Any]:
        return self.config.get("process") or {}

    @property
    def linux(self) -> dict[str, Any]:
        return self.config.get("linux") or {}


def needs_creation_hooks(config: dict[str, Any]) -> bool:
    """True when create must stop for prestart/createRuntime/createContainer hooks."""
    return any(hooks_of(config, k) for k in ("prestart", "createRuntime", "createContainer"))
