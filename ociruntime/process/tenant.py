"""`exec`: start another process inside a running container.

The runtime forks a bootstrap that is born in the container's v2 cgroup and enters the v1
ones itself (cgroups/join.py: no migration wait), is made non-dumpable (so the container
cannot reach the host interpreter through /proc/PID/exe), then joins the container's
namespaces (user first) and forks the tenant, which is inside the container's PID namespace.
The tenant sets up its terminal, identity and limits and execs. Its channel end is
close-on-exec: EOF tells the parent the exec succeeded; an error message tells it why not.
"""

from __future__ import annotations

import errno
import os

from ociruntime import faults
from ociruntime.cgroups.join import join_v1_self
from ociruntime.cgroups.manager import CgroupManager
from ociruntime.config.known import JOIN_ORDER, NAMESPACES
from ociruntime.errors import RuntimeFailure, describe_error
from ociruntime.linux import syscalls as sc
from ociruntime.process import channel as ch
from ociruntime.process.channel import Channel
from ociruntime.process.parent import Spawned, apply_process_limits, fork_container_side
from ociruntime.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from typing import Any, NoReturn



@record
class TenantContext:
    """What the forked side of exec needs."""

    process: dict[str, Any]
    ns_fds: dict[str, int]
    preserve_fds: int
    console: _socket.socket | None
    seccomp: Any = None
    root_fd: int = -1  # the init's root, when the container shares our mount namespace
    cgroups: dict[str, str] = {}  # the container's, by hierarchy ("" is v2)


def _namespace_fds(init_pid: int, config: dict[str, Any]) -> dict[str, int]:
    """Open the init's namespaces that differ from ours, in join order."""
    wanted = {ns["type"] for ns in (config.get("linux") or {}).get("namespaces") or []}
    fds: dict[str, int] = {}
    try:
        for kind in JOIN_ORDER:
            if kind not in wanted:
                continue
            name = NAMESPACES[kind][1]
            theirs = f"/proc/{init_pid}/ns/{name}"
            if os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                continue
            fds[kind] = os.open(theirs, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise _open_failure(e, f"open namespaces of pid {init_pid}", fds) from None
    return fds


def _open_failure(e: OSError, what: str, fds: dict[str, int]) -> RuntimeFailure:
    """Close `fds`; the error to raise for a failed open of the init's /proc files."""
    for fd in fds.values():
        os.close(fd)
    if e.errno in (errno.ENOENT, errno.ESRCH):
        # the init died since its state was read: say so as runc does (podman reads "no such
        # file or directory" as "command not found")
        return RuntimeFailure("cannot exec in a stopped container")
    return RuntimeFailure(f"{what}: {e.strerror}")


def _shared_mountns_root(init_pid: int, config: dict[str, Any], ns_fds: dict[str, int]) -> int:
    """A container without a mount namespace of its own was chrooted into its rootfs: an O_PATH
    fd of the init's root, for the tenant to chroot into too (-1 otherwise)."""
    linux = config.get("linux") or {}
    if any(ns.get("type") == "mount" for ns in linux.get("namespaces") or []):
        return -1
    try:
        return os.open(f"/proc/{init_pid}/root", sc.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise _open_failure(e, f"open the root of pid {init_pid}", ns_fds) from None


def spawn_tenant(init_pid: int, config: dict[str, Any], process: dict[str, Any],
                 cgroups: CgroupManager, *, console: _socket.socket | None,
                 preserve_fds: int) -> int:
    """Start `process` in the container; return its host pid once it has exec'd."""
    seccomp_config = (config.get("linux") or {}).get("seccomp")
    seccomp = None
    if seccomp_config:
        from ociruntime.linux.seccomp import build_filter

        seccomp = build_filter(seccomp_config)
    ns_fds = _namespace_fds(init_pid, config)
    root_fd = _shared_mountns_root(init_pid, config, ns_fds)
    ctx = TenantContext(process, ns_fds, preserve_fds, console, seccomp, root_fd, cgroups.paths)
    # the tenant's code, loaded before the fork: after it, every page an import touches is
    # copied (and joining the mount namespace would hide the host's files)
    from ociruntime.linux import process_attrs  # noqa: F401
    from ociruntime.process import user_process  # noqa: F401

    parent_chan, bootstrap_pid = fork_container_side(
        lambda chan: _run_tenant_side(ctx, chan),
        [*ns_fds.values(), *([root_fd] if root_fd >= 0 else [])], console, cgroups.paths)
    spawned = Spawned(bootstrap_pid)
    try:
        msg = parent_chan.expect(ch.INIT_PID, 60)
        spawned.init_pid = int(msg["pid"])
        os.waitpid(bootstrap_pid, 0)
        spawned.bootstrap_reaped = True
        apply_process_limits(spawned.init_pid, process)
        parent_chan.send(ch.GO, pid=spawned.init_pid)
        while True:
            try:
                msg = parent_chan.recv(60)
            except RuntimeFailure as e:
                if str(e) != "container init exited unexpectedly":
                    raise
                return spawned.init_pid  # EOF: the channel closed on exec
            if msg.get("type") != ch.SECCOMP_FD or not seccomp_config:
                raise RuntimeFailure("protocol error: unexpected message from exec'd process")
            from ociruntime.linux.seccomp import send_to_listener

            state = {"ociVersion": str(config.get("ociVersion", "")), "status": "running",
                     "pid": spawned.init_pid, "annotations": config.get("annotations") or {}}
            try:
                send_to_listener(seccomp_config["listenerPath"], int(msg["fd"]), state,
                                 seccomp_config.get("listenerMetadata", ""))
            finally:
                os.close(int(msg["fd"]))
            parent_chan.send(ch.HOOKS_DONE)
    except BaseException:
        spawned.kill_all()
        raise
    finally:
        parent_chan.close()


def _run_tenant_side(ctx: TenantContext, chan: Channel) -> NoReturn:
    try:
        # born in the v2 cgroup, enter the v1 ones while we still have the host's view and
        # credentials (cgroups/join.py), so the process forked below is born in all of them
        join_v1_self(ctx.cgroups)
        sc.prctl(sc.PR_SET_DUMPABLE, 0)
        if ctx.root_fd >= 0:
            os.fchdir(ctx.root_fd)
            os.chroot(".")
            os.close(ctx.root_fd)
        for kind in JOIN_ORDER:
            if kind in ctx.ns_fds:
                sc.setns(ctx.ns_fds[kind], NAMESPACES[kind][0], kind)
                os.close(ctx.ns_fds[kind])
        pid = os.fork()
        if pid:
            chan.send(ch.INIT_PID, pid=pid)
            os._exit(0)
        chan.expect(ch.GO)
        _tenant(ctx, chan)
    except BaseException as e:  # noqa: BLE001 - everything must reach the parent
        chan.send_error(describe_error(e))
    os._exit(1)


def _tenant(ctx: TenantContext, chan: Channel) -> NoReturn:
    from ociruntime.linux.process_attrs import apply_before_exec
    from ociruntime.process.user_process import exec_process, setup_process

    process = ctx.process
    if ctx.console is not None:
        os.setsid()
        user = process.get("user") or {}
        from ociruntime.linux.console import setup_console  # imported before fork by the parent

        setup_console(ctx.console, process.get("consoleSize"), False,
                      int(user.get("uid", 0)), int(user.get("gid", 0)))
    apply_before_exec(process, {})
    prepared = setup_process(process, ctx.seccomp)
    if prepared.notify_fd >= 0:
        chan.send_fd(ch.SECCOMP_FD, prepared.notify_fd)
        chan.expect(ch.HOOKS_DONE)
        os.close(prepared.notify_fd)
    faults.check("tenant")  # still the host's interpreter, inside the container's PID namespace
    exec_process(prepared, ctx.preserve_fds, report=chan)
