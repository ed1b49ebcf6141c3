"""The container side of create: a linear recipe from fork to execve.

Two processes run it. The *bootstrap* (first fork of the runtime) joins or creates the
namespaces — the user namespace first, asking the parent to write its id maps — and forks the
*init*, which is PID 1 of a new PID namespace. The init builds the rootfs, pivots into it,
sets up the process (hostname, sysctl, masks, capabilities, user, no_new_privs), tells the parent
it is ready, then blocks on exec.fifo until `start` and finally execs the user process.
Any exception is sent to the parent as one error message and the process exits.
"""

from __future__ import annotations

import os
import socket
import traceback
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ociruntime.config.known import JOIN_ORDER, NAMESPACES
from ociruntime.errors import RuntimeFailure
from ociruntime.linux import rootfs as rootfs_mod
from ociruntime.linux import syscalls as sc
from ociruntime.linux.capabilities import CapabilitySets
from ociruntime.linux.console import setup_console
from ociruntime.linux.network import loopback_up
from ociruntime.process import channel as ch
from ociruntime.process.channel import Channel


@dataclass
class InitContext:
    """Everything the container side needs, prepared by the parent before fork."""

    config: dict[str, Any]
    plan: rootfs_mod.RootfsPlan
    new_namespaces: list[str]
    join_fds: dict[str, int]
    fifo_fd: int
    preserve_fds: int = 0
    container_id: str = ""
    new_keyring: bool = True
    console: socket.socket | None = None
    fault: str = ""
    env: list[str] = field(default_factory=list)

    @property
    def process(self) -> dict[str, Any]:
        return self.config.get("process") or {}

    @property
    def linux(self) -> dict[str, Any]:
        return self.config.get("linux") or {}


def _flags(names: list[str]) -> int:
    flags = 0
    for name in names:
        flags |= NAMESPACES[name][0]
    return flags


def _fault(ctx: InitContext, point: str) -> None:
    """Test-only fault injection: PYRUNC_TEST_FAULT names the phase that must fail."""
    if ctx.fault == point:
        raise RuntimeFailure(f"injected fault at {point}")


def run_container_side(ctx: InitContext, chan: Channel) -> NoReturn:
    """Entry point of the forked child: bootstrap, then init; never returns."""
    try:
        _bootstrap(ctx, chan)
    except BaseException as e:  # noqa: BLE001 - everything must reach the parent
        chan.send_error(_describe(e))
    os._exit(1)


def _describe(e: BaseException) -> str:
    if isinstance(e, RuntimeFailure):
        return str(e)
    if isinstance(e, OSError):
        where = f" {e.filename}" if e.filename else ""
        return f"{e.strerror or e}{where}"
    lines = traceback.format_exception_only(type(e), e)
    return "internal error: " + lines[-1].strip()


def _bootstrap(ctx: InitContext, chan: Channel) -> None:
    chan.expect(ch.PLACED)
    _fault(ctx, "bootstrap")
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
    rest = [n for n in ctx.new_namespaces if n != "user"]
    if rest:
        sc.unshare(_flags(rest))
    if "time" in ctx.new_namespaces:
        _write_time_offsets(ctx.linux.get("timeOffsets") or {})
    for fd in ctx.join_fds.values():
        os.close(fd)
    pid = os.fork()
    if pid:
        chan.send(ch.INIT_PID, pid=pid)
        os._exit(0)
    try:
        chan.expect(ch.GO)
        _init(ctx, chan)
    except BaseException as e:  # noqa: BLE001
        chan.send_error(_describe(e))
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


def _home_of(uid: int) -> str:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def _find_executable(name: str, env: list[str]) -> str:
    if "/" in name:
        if not os.path.exists(name):
            raise RuntimeFailure(f'exec: "{name}": stat {name}: no such file or directory')
        return name
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for item in env:
        if item.startswith("PATH="):
            path = item[5:]
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeFailure(f'exec: "{name}": executable file not found in $PATH')


def _setup_user(ctx: InitContext, caps: CapabilitySets | None) -> None:
    user = ctx.process.get("user") or {}
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    if caps is not None:
        caps.drop_bounding()
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)
    if _setgroups_allowed():
        os.setgroups([int(g) for g in user.get("additionalGids") or []])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)
    if caps is not None:
        caps.apply()


def _setgroups_allowed() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() != "deny"
    except OSError:
        return True


def _init(ctx: InitContext, chan: Channel) -> None:
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    os.setsid()
    _fault(ctx, "init")
    if ctx.new_keyring:
        sc.join_session_keyring(f"_ses.{ctx.container_id}")
    if "network" in ctx.new_namespaces:
        loopback_up()
    os.umask(0)
    plan = ctx.plan
    if "mount" not in ctx.new_namespaces and "mount" not in ctx.join_fds:
        raise RuntimeFailure("unable to set up the rootfs: a mount namespace is required")
    root_fd = rootfs_mod.prepare(plan)
    _fault(ctx, "mounts")
    rootfs_mod.pivot(plan, root_fd)
    os.close(root_fd)
    config = ctx.config
    if config.get("hostname") is not None and "uts" in ctx.new_namespaces:
        socket.sethostname(config["hostname"])
    if config.get("domainname") is not None and "uts" in ctx.new_namespaces:
        sc.setdomainname(config["domainname"])
    if ctx.console is not None:
        user = ctx.process.get("user") or {}
        setup_console(ctx.console, ctx.process.get("consoleSize"), True,
                      int(user.get("uid", 0)), int(user.get("gid", 0)))
    _write_sysctl(ctx.linux.get("sysctl") or {})
    rootfs_mod.finalize(plan)
    process = ctx.process
    env = list(process.get("env") or [])
    user = process.get("user") or {}
    if not any(e.startswith("HOME=") for e in env):
        env.append("HOME=" + _home_of(int(user.get("uid", 0))))
    cwd = process.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as e:
        raise RuntimeFailure(f"chdir to cwd ({cwd!r}) set in config.json failed: {e.strerror}"
                             ) from None
    caps = CapabilitySets(process["capabilities"]) if "capabilities" in process else None
    _setup_user(ctx, caps)
    if process.get("noNewPrivileges"):
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    args = process.get("args") or []
    executable = _find_executable(args[0], env)
    os.umask(int(user.get("umask", 0o022)))
    _fault(ctx, "ready")
    chan.send(ch.READY)
    chan.close()
    _wait_for_start(ctx.fifo_fd)
    _close_fds(3 + ctx.preserve_fds)
    try:
        os.execve(executable, args, _env_dict(env))
    except OSError as e:
        os.write(2, f"pyrunc: exec {executable}: {e.strerror}\n".encode())
        os._exit(127 if e.errno == 2 else 126)


def _env_dict(env: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep:
            result[key] = value
    return result


def _wait_for_start(fifo_fd: int) -> None:
    """Block until `pyrunc start` opens exec.fifo, then tell it we are going (one byte)."""
    try:
        fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        os.write(2, f"pyrunc: open exec.fifo: {e.strerror}\n".encode())
        os._exit(1)
    os.write(fd, b"0")
    os.close(fd)
    os.close(fifo_fd)


def _close_fds(first: int) -> None:
    """Mark every fd from `first` on close-on-exec (close_range), so none reach the process."""
    if sc.close_range_cloexec(first):
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass
