"""The container side of create: a linear recipe from fork to execve.

Two processes run it. The *bootstrap* (first fork of the runtime) joins or creates the
namespaces — the user namespace first, asking the parent to write its id maps — and forks the
*init*, which is PID 1 of a new PID namespace. The init builds the rootfs, pivots into it,
sets up the process (hostname, sysctl, masks, capabilities, user, no_new_privs), tells the parent
it is ready, then waits on exec.sock until `start` and finally execs the user process.
Any exception is sent to the parent as one error message and the process exits.
"""

from __future__ import annotations

import _signal
import _socket
import os

from ociruntime import faults
from ociruntime.cgroups.join import fork_into, join_v1_self
from ociruntime.config.known import JOIN_ORDER, NAMESPACES
from ociruntime.errors import RuntimeFailure, describe_error
from ociruntime.hooks import run_hooks, state_for_hooks
from ociruntime.linux import rootfs as rootfs_mod
from ociruntime.linux import syscalls as sc
from ociruntime.linux.network import loopback_up
from ociruntime.linux.process_attrs import apply_before_exec
from ociruntime.process import channel as ch
from ociruntime.process.channel import Channel
from ociruntime.process.context import InitContext, needs_creation_hooks
from ociruntime.process.user_process import exec_process, setup_process

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn



def _flags(names: list[str]) -> int:
    flags = 0
    for name in names:
        flags |= NAMESPACES[name][0]
    return flags




def run_container_side(ctx: InitContext, chan: Channel) -> NoReturn:
    """Entry point of the forked child: bootstrap, then init; never returns."""
    try:
        _bootstrap(ctx, chan)
    except BaseException as e:  # noqa: BLE001 - everything must reach the parent
        chan.send_error(describe_error(e))
    os._exit(1)


def _die_with_runtime(ctx: InitContext) -> None:
    """Be killed if the `pyrunc create` that started us dies (it is our parent right now).

    If it died before the prctl, the bootstrap sees another parent and exits; the init (whose
    parent is outside its PID namespace, getppid() is 0) finds the channel closed instead.
    """
    sc.prctl(sc.PR_SET_PDEATHSIG, _signal.SIGKILL)
    ppid = os.getppid()
    if ppid and ppid != ctx.runtime_pid:
        os._exit(1)


def _bootstrap(ctx: InitContext, chan: Channel) -> None:
    _die_with_runtime(ctx)
    faults.check("bootstrap")
    if "user" in ctx.join_fds:
        sc.setns(ctx.join_fds["user"], sc.CLONE_NEWUSER, "user")
    if "user" in ctx.new_namespaces:
        sc.unshare(sc.CLONE_NEWUSER)
        chan.send(ch.ASK_IDMAP)
        chan.expect(ch.IDMAP_DONE)
    if "user" in ctx.new_namespaces or "user" in ctx.join_fds:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    for name in JOIN_ORDER:
        if name != "user" and name in ctx.join_fds:
            sc.setns(ctx.join_fds[name], NAMESPACES[name][0], name)
    # the cgroup namespace waits for the init's placement (its root is the cgroup at unshare)
    rest = [n for n in ctx.new_namespaces if n not in ("user", "cgroup")]
    if rest:
        sc.unshare(_flags(rest))
    if "time" in ctx.new_namespaces:
        _write_time_offsets(ctx.linux.get("timeOffsets") or {})
    for fd in ctx.join_fds.values():
        os.close(fd)
    # the parent has made the cgroups (their final paths come along), recorded the state and
    # applied the resources: from now on there is an init it must know of to clean up
    paths = ctx.plan.cgroup_paths = chan.expect(ch.PREPARED)["cgroups"]
    if ctx.enters_cgroups:
        join_v1_self(paths)
        pid = fork_into(paths)
    else:
        pid = os.fork()  # the parent has moved us (parent.py)
    if pid:
        chan.send(ch.INIT_PID, pid=pid)
        os._exit(0)
    try:
        _init(ctx, chan)
    except BaseException as e:  # noqa: BLE001
        chan.send_error(describe_error(e))
    os._exit(1)


def _write_time_offsets(offsets: dict[str, Any]) -> None:
    lines = []
    for clock in ("monotonic", "boottime"):
        if clock in offsets:
            o = offsets[clock]
            lines.append(f"{clock} {int(o.get('secs', 0))} {int(o.get('nanosecs', 0))}\n")
    if lines:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write("".join(lines))


def _write_sysctl(sysctl: dict[str, str]) -> None:
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as e:
            raise RuntimeFailure(f"sysctl {key}={value}: {path}: {e.strerror}") from None


INIT_COMM = b"pyrunc-init"


def _init(ctx: InitContext, chan: Channel) -> None:
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    sc.set_name(INIT_COMM)
    os.setsid()
    if ctx.new_keyring:
        sc.join_session_keyring(f"_ses.{ctx.container_id}")
    if "network" in ctx.new_namespaces:
        loopback_up()
    os.umask(0)
    plan = ctx.plan
    # no mount namespace of its own: it shares the runtime's (config-linux.md#namespaces)
    own_mountns = "mount" in ctx.new_namespaces or "mount" in ctx.join_fds
    # We were born in the container's cgroups (the parent placed the bootstrap); GO says the
    # last limits are set. Only a cgroup mount in a new cgroup namespace waits for it first.
    must_wait = plan.new_cgroupns and any(m.get("type") == "cgroup" for m in plan.mounts)
    if must_wait:
        _wait_for_placement(ctx, chan)
    root_fd = rootfs_mod.prepare(plan, own_mountns)
    if not must_wait:
        _wait_for_placement(ctx, chan)
    faults.check("mounts")
    if needs_creation_hooks(ctx.config):
        chan.send(ch.HOOKS)
        chan.expect(ch.HOOKS_DONE)
        run_hooks(ctx.config, "createContainer", _hook_state(ctx, "creating"))
    if own_mountns:
        rootfs_mod.pivot(plan, root_fd)
    else:
        rootfs_mod.enter_shared(root_fd)
    os.close(root_fd)
    config = ctx.config
    own_uts = "uts" in ctx.new_namespaces or "uts" in ctx.join_fds
    if config.get("hostname") is not None and own_uts:
        _socket.sethostname(config["hostname"])
    if config.get("domainname") is not None and own_uts:
        sc.setdomainname(config["domainname"])
    if ctx.console is not None:
        user = ctx.process.get("user") or {}
        from ociruntime.linux.console import setup_console  # imported before fork by the parent

        setup_console(ctx.console, ctx.process.get("consoleSize"), True,
                      int(user.get("uid", 0)), int(user.get("gid", 0)))
    _write_sysctl(ctx.linux.get("sysctl") or {})
    rootfs_mod.finalize(plan)
    apply_before_exec(ctx.process, ctx.linux)
    prepared = setup_process(ctx.process, ctx.seccomp)
    if prepared.notify_fd >= 0:
        chan.send_fd(ch.SECCOMP_FD, prepared.notify_fd)
        chan.expect(ch.HOOKS_DONE)
        os.close(prepared.notify_fd)
    faults.check("ready")
    sc.prctl(sc.PR_SET_PDEATHSIG, 0)  # from now on the container outlives `pyrunc create`
    chan.send(ch.READY)
    chan.close()
    _wait_for_start(ctx)
    exec_process(prepared, ctx.preserve_fds)


def _wait_for_placement(ctx: InitContext, chan: Channel) -> None:
    """Wait for GO (every limit applied, the pids limit last), then enter a new cgroup
    namespace if the config asks for one."""
    go = chan.expect(ch.GO)
    ctx.host_pid = int(go.get("pid", 0))
    _die_with_runtime(ctx)  # the bootstrap has been reaped: the runtime is our parent now
    faults.check("init")
    if "cgroup" in ctx.new_namespaces:
        sc.unshare(sc.CLONE_NEWCGROUP)


def _hook_state(ctx: InitContext, status: str) -> bytes:
    return state_for_hooks(ctx.container_id, status, ctx.host_pid, ctx.bundle,
                           ctx.config.get("annotations"), str(ctx.config.get("ociVersion", "")))


def _wait_for_start(ctx: InitContext) -> None:
    """Wait until `pyrunc start` connects to exec.sock, run startContainer hooks, then answer
    `0` (going) or `1<error>` so that start can report a failing hook."""
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, ctx.start_fd)
    fd, _ = listener._accept()
    listener.close()
    try:
        run_hooks(ctx.config, "startContainer", _hook_state(ctx, "created"))
    except RuntimeFailure as e:
        os.write(fd, b"1" + str(e).encode()[:3000])
        os._exit(1)
    os.write(fd, b"0")
    os.close(fd)
