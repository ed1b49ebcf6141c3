"""The mount options pyrunc knows, as one table shared by the mounter and `features`.

Each option maps to (clear, flag): `clear` True means the flag is removed from the mount flags.
Options not in any table are passed to the filesystem as data (e.g. ``mode=755``).
"""

from __future__ import annotations

from ociruntime.linux import syscalls as sc
from ociruntime.record import record

FLAG_OPTIONS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, sc.MS_RDONLY),
    "rw": (True, sc.MS_RDONLY),
    "suid": (True, sc.MS_NOSUID),
    "nosuid": (False, sc.MS_NOSUID),
    "dev": (True, sc.MS_NODEV),
    "nodev": (False, sc.MS_NODEV),
    "exec": (True, sc.MS_NOEXEC),
    "noexec": (False, sc.MS_NOEXEC),
    "sync": (False, sc.MS_SYNCHRONOUS),
    "async": (True, sc.MS_SYNCHRONOUS),
    "dirsync": (False, sc.MS_DIRSYNC),
    "remount": (False, sc.MS_REMOUNT),
    "mand": (False, sc.MS_MANDLOCK),
    "nomand": (True, sc.MS_MANDLOCK),
    "atime": (True, sc.MS_NOATIME),
    "noatime": (False, sc.MS_NOATIME),
    "diratime": (True, sc.MS_NODIRATIME),
    "nodiratime": (False, sc.MS_NODIRATIME),
    "relatime": (False, sc.MS_RELATIME),
    "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME),
    "nostrictatime": (True, sc.MS_STRICTATIME),
    "iversion": (False, sc.MS_I_VERSION),
    "noiversion": (True, sc.MS_I_VERSION),
    "lazytime": (False, sc.MS_LAZYTIME),
    "nolazytime": (True, sc.MS_LAZYTIME),
    "silent": (False, sc.MS_SILENT),
    "loud": (True, sc.MS_SILENT),
    "symfollow": (True, sc.MS_NOSYMFOLLOW),
    "nosymfollow": (False, sc.MS_NOSYMFOLLOW),
    "bind": (False, sc.MS_BIND),
    "rbind": (False, sc.MS_BIND | sc.MS_REC),
}

PROPAGATION_OPTIONS: dict[str, int] = {
    "private": sc.MS_PRIVATE,
    "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED,
    "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE,
    "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE,
    "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}

# Options that change the mount tree (pyrunc handles them itself, not the kernel)
EXTENSION_OPTIONS = frozenset({"tmpcopyup"})

# Flags a bind mount can only get by a remount after the bind.
BIND_REMOUNT_FLAGS = (
    sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_NOATIME
    | sc.MS_NODIRATIME | sc.MS_RELATIME | sc.MS_STRICTATIME | sc.MS_NOSYMFOLLOW
)


def known_mount_options() -> list[str]:
    """Every option name the mounter understands, sorted (feeds `pyrunc features`)."""
    return sorted(set(FLAG_OPTIONS) | set(PROPAGATION_OPTIONS) | EXTENSION_OPTIONS)


@record
class ParsedOptions:
    """A mount's options split into kernel flags, propagation flags and filesystem data."""

    flags: int = 0
    cleared: int = 0
    propagation: list[int] = []
    data: list[str] = []
    extensions: set[str] = set()

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & sc.MS_BIND)

    @property
    def data_string(self) -> str | None:
        return ",".join(self.data) if self.data else None


def parse_mount_options(options: list[str] | None) -> ParsedOptions:
    """Split a config mount's `options` into flags, propagation, extensions and data."""
    parsed = ParsedOptions()
    for option in options or ():
        if option in FLAG_OPTIONS:
            clear, flag = FLAG_OPTIONS[option]
            if clear:
                parsed.flags &= ~flag
                parsed.cleared |= flag
            else:
                parsed.flags |= flag
                parsed.cleared &= ~flag
        elif option in PROPAGATION_OPTIONS:
            parsed.propagation.append(PROPAGATION_OPTIONS[option])
        elif option in EXTENSION_OPTIONS:
            parsed.extensions.add(option)
        else:
            parsed.data.append(option)
    return parsed
