"""RootfsPlan: what the init needs to know to build the rootfs (a plain record).

Apart from rootfs.py so that the parent can make one without loading the mount code, which
only the container side runs.
"""

from __future__ import annotations

from ociruntime.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


@record
class RootfsPlan:
    """What the init needs to know to build the rootfs."""

    rootfs: str
    bundle: str
    mounts: list[dict[str, Any]]
    devices: list[dict[str, Any]]
    propagation: str | None
    readonly: bool
    masked: list[str]
    readonly_paths: list[str]
    cgroup_paths: dict[str, str]
    new_cgroupns: bool
    in_userns: bool
    no_pivot: bool
    cwd: str = "/"
    extra_dirs: list[str] = []
    idmapped: dict = {}
