"""Idmapped mounts (`idmap`/`ridmap` options, per-mount uidMappings/gidMappings).

The parent, in the host user namespace, clones the source tree (open_tree), marks it idmapped
with a user namespace that carries the mappings (mount_setattr MOUNT_ATTR_IDMAP), and hands the
detached mount's fd to the init, which attaches it at the destination (move_mount).
"""

from __future__ import annotations

import os

from ociruntime.errors import RuntimeFailure, SyscallError
from ociruntime.linux import syscalls as sc
from ociruntime.linux.kernel import call

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OPEN_TREE_CLONE = 1
MOUNT_ATTR_IDMAP = 0x00100000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_SYMLINKS = 0x10



def _userns_with(uid_maps: list[dict[str, int]], gid_maps: list[dict[str, int]]) -> int:
    """An fd of a fresh user namespace with these mappings (a short-lived helper holds it)."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            sc.unshare(sc.CLONE_NEWUSER)
        finally:
            os.close(write_end)
            os.read(read_end, 1)
            os._exit(0)
    os.close(read_end)
    try:
        # wait until the child has its new namespace
        mine = os.stat("/proc/self/ns/user").st_ino
        for _ in range(10000):
            if os.stat(f"/proc/{pid}/ns/user").st_ino != mine:
                break
        for kind, maps in (("uid", uid_maps), ("gid", gid_maps)):
            text = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
            with open(f"/proc/{pid}/{kind}_map", "w") as f:
                f.write(text)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(write_end)
        os.waitpid(pid, 0)


def prepare_idmapped(entry: dict[str, Any], bundle: str, linux: dict[str, Any]) -> int:
    """Return a detached, idmapped clone of the mount's source (an fd for move_mount)."""
    uid_maps = entry.get("uidMappings") or linux.get("uidMappings") or []
    gid_maps = entry.get("gidMappings") or linux.get("gidMappings") or []
    dest = entry.get("destination", "")
    if not uid_maps or not gid_maps:
        raise RuntimeFailure(f"mount {dest}: idmap needs uidMappings and gidMappings "
                             "(on the mount or in linux)")
    source = entry.get("source") or ""
    if not source.startswith("/"):
        source = os.path.join(bundle, source)
    recursive = "ridmap" in (entry.get("options") or []) or "rbind" in (entry.get("options") or [])
    flags = OPEN_TREE_CLONE | os.O_CLOEXEC | (sc.AT_RECURSIVE if recursive else 0)
    try:
        tree = call("open_tree", -100, os.fsencode(source), flags)
    except OSError as e:
        raise SyscallError("open_tree", source, e.errno) from None
    userns = _userns_with(uid_maps, gid_maps)
    try:
        attr = sc.mount_attr(MOUNT_ATTR_IDMAP, 0, 0, userns)
        at = sc.AT_EMPTY_PATH | (sc.AT_RECURSIVE if recursive else 0)
        try:
            call("mount_setattr", tree, b"", at, attr, len(attr))
        except OSError as e:
            os.close(tree)
            raise SyscallError("mount_setattr idmap", source, e.errno) from None
    finally:
        os.close(userns)
    return tree


def attach(tree_fd: int, target: str, shown: str) -> None:
    """move_mount a detached tree onto `target` (a /proc/self/fd/N path works)."""
    try:
        call("move_mount", tree_fd, b"", -100, os.fsencode(target),
             MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS)
    except OSError as e:
        raise SyscallError("move_mount", shown, e.errno) from None
