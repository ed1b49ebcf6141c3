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

# mount_setattr(2) MOUNT_ATTR_* bits, for the recursive (`r`-prefixed) options
ATTR_RDONLY = 0x1
ATTR_NOSUID = 0x2
ATTR_NODEV = 0x4
ATTR_NOEXEC = 0x8
ATTR_ATIME_MASK = 0x70
ATTR_RELATIME = 0x0
ATTR_NOATIME = 0x10
ATTR_STRICTATIME = 0x20
ATTR_NODIRATIME = 0x80
ATTR_NOSYMFOLLOW = 0x200000

# option -> (attributes to set, attributes to clear), applied with AT_RECURSIVE
RECURSIVE_OPTIONS: dict[str, tuple[int, int]] = {
    "rro": (ATTR_RDONLY, 0),
    "rrw": (0, ATTR_RDONLY),
    "rnosuid": (ATTR_NOSUID, 0),
    "rsuid": (0, ATTR_NOSUID),
    "rnodev": (ATTR_NODEV, 0),
    "rdev": (0, ATTR_NODEV),
    "rnoexec": (ATTR_NOEXEC, 0),
    "rexec": (0, ATTR_NOEXEC),
    "rnodiratime": (ATTR_NODIRATIME, 0),
    "rdiratime": (0, ATTR_NODIRATIME),
    "rrelatime": (ATTR_RELATIME, ATTR_ATIME_MASK),
    "rnorelatime": (0, 0),
    "rnoatime": (ATTR_NOATIME, ATTR_ATIME_MASK),
    "ratime": (0, ATTR_NOATIME),
    "rstrictatime": (ATTR_STRICTATIME, ATTR_ATIME_MASK),
    "rnostrictatime": (0, ATTR_STRICTATIME),
    "rnosymfollow": (ATTR_NOSYMFOLLOW, 0),
    "rsymfollow": (0, ATTR_NOSYMFOLLOW),
}

# Options that change the mount tree (pyrunc handles them itself, not the kernel)
EXTENSION_OPTIONS = frozenset({"tmpcopyup", "idmap", "ridmap"})

# Flags a bind mount can only get by a remount after the bind.
BIND_REMOUNT_FLAGS = (
    sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_NOATIME
    | sc.MS_NODIRATIME | sc.MS_RELATIME | sc.MS_STRICTATIME | sc.MS_NOSYMFOLLOW
)


def known_mount_options() -> list[str]:
    """Every option name the mounter understands, sorted (feeds `pyrunc features`)."""
    return sorted(set(FLAG_OPTIONS) | set(PROPAGATION_OPTIONS) | set(RECURSIVE_OPTIONS)
                  | EXTENSION_OPTIONS)


@record
class ParsedOptions:
    """A mount's options split into kernel flags, propagation flags and filesystem data."""

    flags: int = 0
    cleared: int = 0
    propagation: list[int] = []
    data: list[str] = []
    extensions: set[str] = set()
    rec_set: int = 0
    rec_clear: int = 0

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
        elif option in RECURSIVE_OPTIONS:
            attr_set, attr_clear = RECURSIVE_OPTIONS[option]
            parsed.rec_set = (parsed.rec_set & ~attr_clear) | attr_set
            parsed.rec_clear = (parsed.rec_clear & ~attr_set) | attr_clear
        elif option in EXTENSION_OPTIONS:
            parsed.extensions.add(option)
        else:
            parsed.data.append(option)
    return parsed


def wants_idmap(entry: dict) -> bool:
    """True for a mount with `idmap`/`ridmap` or its own id mappings."""
    opts = entry.get("options") or []
    return ("idmap" in opts or "ridmap" in opts or bool(entry.get("uidMappings"))
            or bool(entry.get("gidMappings")))
