"""Host-dependent checks before create: features that this host or pyrunc cannot provide are
refused with a clear reason instead of being silently dropped."""

from __future__ import annotations

import os

from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def apparmor_enabled() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    return os.path.exists("/sys/fs/selinux/enforce")


def check_host_support(config: dict[str, Any]) -> None:
    """Refuse what cannot be honoured here. LSMs follow runc: an AppArmor profile (and a mount
    label) are ignored when the LSM is off, an SELinux process label is an error then."""
    linux = config.get("linux") or {}
    process = config.get("process") or {}
    if linux.get("intelRdt") is not None:
        where = "linux.intelRdt"
        if not os.path.isdir("/sys/fs/resctrl/info"):
            raise RuntimeFailure(f"{where}: Intel RDT needs resctrl mounted at /sys/fs/resctrl, "
                                 "and it is not")
        raise RuntimeFailure(f"{where}: Intel RDT is not supported by pyrunc yet")
    if process.get("apparmorProfile") and apparmor_enabled():
        raise RuntimeFailure("process.apparmorProfile: AppArmor is enabled on this host but "
                             "pyrunc cannot apply profiles yet")
    if process.get("selinuxLabel"):
        if not selinux_enabled():
            raise RuntimeFailure("process.selinuxLabel: a label is set but SELinux is disabled "
                                 "or not supported on this host")
        raise RuntimeFailure("process.selinuxLabel: SELinux is enabled on this host but pyrunc "
                             "cannot apply labels yet")
    if linux.get("mountLabel") and selinux_enabled():
        raise RuntimeFailure("linux.mountLabel: SELinux is enabled on this host but pyrunc "
                             "cannot apply labels yet")
