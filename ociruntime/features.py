"""`pyrunc features`: what this runtime implements, from the same tables the parser uses."""

from __future__ import annotations

from ociruntime import OCI_VERSION, __version__
from ociruntime.config.known import CAPABILITIES, NAMESPACES
from ociruntime.config.mount_options import known_mount_options
from ociruntime.hooks import HOOK_KINDS
from ociruntime.linux.process_attrs import MEMPOLICY_FLAGS, MEMPOLICY_MODES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


OCI_VERSION_MIN = "1.0.0"


def _seccomp() -> dict[str, Any]:
    from ociruntime.linux import seccomp

    return {
        "enabled": True,
        "actions": seccomp.known_actions(),
        "operators": seccomp.known_operators(),
        "archs": seccomp.known_archs(),
        "knownFlags": seccomp.known_flags(),
        "supportedFlags": seccomp.supported_flags(),
    }


def features() -> dict[str, Any]:
    """The runtime-spec features document. Everything not implemented is reported false."""
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": known_mount_options(),
        "linux": {
            "namespaces": list(NAMESPACES),
            "capabilities": list(CAPABILITIES),
            "cgroup": {
                "v1": True,
                "v2": True,
                "systemd": False,
                "systemdUser": False,
                "rdma": False,
            },
            "seccomp": _seccomp(),
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": True},
            "memoryPolicy": {
                "modes": list(MEMPOLICY_MODES),
                "flags": list(MEMPOLICY_FLAGS),
            },
        },
        "annotations": {
            "io.github.pyrunc.version": __version__,
        },
        "potentiallyUnsafeConfigAnnotations": [],
    }
