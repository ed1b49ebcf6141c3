"""The host side of create: spawn the container side, serve its requests, undo on failure.

Protocol (container side -> parent, each step answered before the next):

    parent                         bootstrap / init
    fork ------------------------> (bootstrap) load the container-side code
    create the cgroups, record      join/unshare user ns
    the state, apply resources
    (not pids) [, move the
    bootstrap into the cgroups]
    <------------------------------ ASK_IDMAP        (only with a new user namespace)
    write uid_map, gid_map
    IDMAP_DONE ------------------> unshare the other namespaces (not cgroup)
    PREPARED cgroup paths -------> [enter the v1 cgroups], fork init (born in the cgroups)
    <------------------------------ INIT_PID pid      (bootstrap exits)
    pids limit, prlimit,            (init) mounts the rootfs meanwhile
    oom_score_adj
    GO --------------------------> (init) unshare cgroup ns, pivot, process setup
    <------------------------------ HOOKS            (only with creation hooks; after mounts)
    prestart, createRuntime hooks
    HOOKS_DONE ------------------> createContainer hooks, pivot_root, process setup
    <------------------------------ READY            (init then waits on exec.sock)

The fork comes before the host side is prepared: the bootstrap loads the container-side
modules (mounts, capabilities, ...) and creates the namespaces on the other CPU while the
parent creates the cgroups, records the state and applies the resources. It forks the init
only after PREPARED, which carries the cgroup paths (a rootless create without a delegated
cgroup ends up with none): until then the bootstrap, whose pid the parent knows, is the only
process to kill if preparing fails, and the init joins cgroups whose rules are final.

The init is born in the cgroups, so no process of the container is ever outside them, and
nothing is migrated by pid: that would take the kernel's global migration lock, whose first
taking after an idle spell waits for an RCU grace period (5-15 ms here, about half of a
`run`; cgroups/join.py). The bootstrap enters the v1 hierarchies itself (a write of 0 to
their `tasks` files skips that lock) and forks the init straight into the v2 cgroup (clone3
CLONE_INTO_CGROUP). It can do so when it still has the runtime's credentials and view of
/sys/fs/cgroup: no user namespace, no joined mount or cgroup namespace. Otherwise the parent
moves the bootstrap by pid once the cgroups exist, and the warm-up (cgroups/warmup.py) has
started the wait early. The pids limit is set at INIT_PID, once the bootstrap is gone (a
limit of 1 must still let it fork the init). Only a cgroup mount in a new cgroup namespace
makes the init wait for GO before mounting.

Any ERROR message, or EOF, aborts create; the parent then kills what it started, removes the
cgroups and the state directory.
"""

from __future__ import annotations

import _signal
import os
import resource

from ociruntime import faults
from ociruntime.cgroups.manager import CgroupManager
from ociruntime.config.known import NAMESPACES, RLIMITS
from ociruntime.config.mount_options import wants_idmap
from ociruntime.errors import RuntimeFailure
from ociruntime.hooks import run_hooks, state_for_hooks
from ociruntime.linux import syscalls as sc
from ociruntime.linux.rootfs_plan import RootfsPlan
from ociruntime.process import channel as ch
from ociruntime.process.channel import Channel
from ociruntime.process.context import InitContext, needs_creation_hooks
from ociruntime.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from collections.abc import Callable
    from typing import Any, NoReturn


INIT_TIMEOUT = 120.0


@record
class Spawned:
    """The processes a spawn started, and whether the bootstrap has been reaped."""

    bootstrap_pid: int
    init_pid: int = 0
    bootstrap_reaped: bool = False
    host_mounts: list[str] = []  # made in our mount namespace (a container without its own)

    def kill_all(self) -> None:
        """Undo the spawn: kill and reap the init and (if still ours) the bootstrap."""
        if self.init_pid:
            reap(self.init_pid)
        if not self.bootstrap_reaped:
            reap(self.bootstrap_pid)


def _namespace_plan(linux: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    new: list[str] = []
    join: dict[str, str] = {}
    for ns in linux.get("namespaces") or []:
        kind = ns["type"]
        if ns.get("path"):
            join[kind] = ns["path"]
        else:
            new.append(kind)
    return new, join


def _open_namespaces(join: dict[str, str]) -> dict[str, int]:
    fds: dict[str, int] = {}
    try:
        for kind, path in join.items():
            try:
                fds[kind] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise RuntimeFailure(
                    f"open {kind} namespace {path}: {e.strerror}") from None
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds


def _write_idmaps(pid: int, linux: dict[str, Any]) -> None:
    """Write the bootstrap's uid_map/gid_map (as an unprivileged user: setgroups deny first,
    and newuidmap/newgidmap when more than our own id is mapped)."""
    if os.geteuid() != 0:
        _write_idmaps_unprivileged(pid, linux)
        return
    for kind in ("uid", "gid"):
        maps = linux.get(f"{kind}Mappings") or []
        text = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
        path = f"/proc/{pid}/{kind}_map"
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError as e:
            raise RuntimeFailure(f"write {path} ({text.strip()!r}): {e.strerror}") from None


def _write_idmaps_unprivileged(pid: int, linux: dict[str, Any]) -> None:
    own = {"uid": os.geteuid(), "gid": os.getegid()}
    for kind in ("uid", "gid"):
        maps = linux.get(f"{kind}Mappings") or []
        if len(maps) == 1 and maps[0]["hostID"] == own[kind] and maps[0]["size"] == 1:
            if kind == "gid":
                with open(f"/proc/{pid}/setgroups", "w") as f:
                    f.write("deny")
            text = f"{maps[0]['containerID']} {maps[0]['hostID']} 1\n"
            try:
                with open(f"/proc/{pid}/{kind}_map", "w") as f:
                    f.write(text)
            except OSError as e:
                raise RuntimeFailure(f"write /proc/{pid}/{kind}_map: {e.strerror}") from None
            continue
        import shutil
        import subprocess

        tool = shutil.which(f"new{kind}map")
        if tool is None:
            raise RuntimeFailure(f"mapping more than your own {kind} needs new{kind}map "
                                 "(Debian package uidmap)")
        args = [tool, str(pid)]
        for m in maps:
            args += [str(m["containerID"]), str(m["hostID"]), str(m["size"])]
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeFailure(f"{' '.join(args)}: {done.stderr.strip()}")


def apply_process_limits(pid: int, process: dict[str, Any]) -> None:
    """prlimit the process.rlimits and write oomScoreAdj from the host (full privileges)."""
    for rl in process.get("rlimits") or []:
        number = RLIMITS.get(rl["type"])
        if number is None:
            raise RuntimeFailure(f"unknown rlimit type {rl['type']}")
        soft, hard = (v if v < 1 << 63 else resource.RLIM_INFINITY
                      for v in (int(rl["soft"]), int(rl["hard"])))
        try:
            resource.prlimit(pid, number, (soft, hard))
        except OSError as e:
            raise RuntimeFailure(f"setrlimit {rl['type']} ({soft}, {hard}): {e.strerror}") from None
        except ValueError as e:
            raise RuntimeFailure(f"setrlimit {rl['type']} ({soft}, {hard}): {e}") from None
    if "oomScoreAdj" in process:
        path = f"/proc/{pid}/oom_score_adj"
        try:
            with open(path, "w") as f:
                f.write(str(int(process["oomScoreAdj"])))
        except OSError as e:
            raise RuntimeFailure(f"write {path}: {e.strerror}") from None


def _set_initial_affinity(pid: int, process: dict[str, Any]) -> None:
    """process.execCPUAffinity.initial: the init's CPUs until it execs the user process."""
    initial = (process.get("execCPUAffinity") or {}).get("initial")
    if not initial:
        return
    from ociruntime.linux.process_attrs import parse_cpu_list

    try:
        os.sched_setaffinity(pid, parse_cpu_list(initial))
    except (ValueError, OSError) as e:
        raise RuntimeFailure(f"process.execCPUAffinity.initial {initial!r}: {e}") from None


def _warn_unknown_capabilities(process: dict[str, Any]) -> None:
    """Capabilities this kernel does not know are skipped with a warning (runtime-spec 1.1)."""
    from ociruntime import log
    from ociruntime.config.known import last_cap
    from ociruntime.linux.capabilities import unknown_to_kernel

    for entry in unknown_to_kernel(process.get("capabilities"), last_cap()):
        log.warning(f"process.capabilities.{entry} is unknown to this kernel and skipped")


def reap(pid: int) -> None:
    """Kill and wait for a child of ours (we are a subreaper, so orphans are ours too)."""
    try:
        os.kill(pid, _signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def spawn(config: dict[str, Any], bundle: str, rootfs: str, start_fd: int,
          cgroups: CgroupManager, *, prepare: Callable[[], CgroupManager] | None = None,
          no_pivot: bool = False, preserve_fds: int = 0,
          console: _socket.socket | None = None, container_id: str = "",
          new_keyring: bool = True) -> Spawned:
    """Start the container side and run the protocol until the init is ready.

    `cgroups` has the paths the container will use; `prepare`, called right after the fork,
    creates them (and whatever else the host side needs) and returns the manager to place
    the init with. On failure every process started here is killed and reaped before the
    error propagates; the caller removes the cgroups and the state dir.
    """
    linux = config.get("linux") or {}
    new, join = _namespace_plan(linux)
    for kind in new + list(join):
        if kind not in NAMESPACES:
            raise RuntimeFailure(f"unknown namespace type {kind!r}")
    plan = RootfsPlan(
        rootfs=rootfs,
        bundle=bundle,
        mounts=config.get("mounts") or [],
        devices=linux.get("devices") or [],
        propagation=linux.get("rootfsPropagation"),
        readonly=bool((config.get("root") or {}).get("readonly")),
        masked=linux.get("maskedPaths") or [],
        readonly_paths=linux.get("readonlyPaths") or [],
        cgroup_paths=cgroups.paths,
        new_cgroupns="cgroup" in new,
        in_userns="user" in new or "user" in join,
        no_pivot=no_pivot,
        cwd=(config.get("process") or {}).get("cwd") or "/",
    )
    _warn_unknown_capabilities(config.get("process") or {})
    seccomp = None
    if linux.get("seccomp"):
        from ociruntime.linux.seccomp import build_filter

        seccomp = build_filter(linux["seccomp"])
        if seccomp.uses_notify and not linux["seccomp"].get("listenerPath"):
            raise RuntimeFailure("linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")
    join_fds = _open_namespaces(join)
    if any(wants_idmap(m) for m in plan.mounts):
        from ociruntime.linux.idmap import prepare_idmapped

        try:
            for index, entry in enumerate(plan.mounts):
                if wants_idmap(entry):
                    plan.idmapped[index] = prepare_idmapped(entry, bundle, linux)
        except BaseException:
            for fd in [*join_fds.values(), *plan.idmapped.values()]:
                os.close(fd)
            raise
    ctx = InitContext(config=config, plan=plan, new_namespaces=new, join_fds=join_fds,
                      start_fd=start_fd, preserve_fds=preserve_fds, console=console,
                      container_id=container_id, new_keyring=new_keyring, bundle=bundle,
                      seccomp=seccomp, runtime_pid=os.getpid(),
                      enters_cgroups=bootstrap_enters_cgroups(new, join))
    if not ctx.enters_cgroups:
        from ociruntime.cgroups import warmup

        warmup.start()  # the parent will move the bootstrap by pid: start the wait now
    shared_mountns = "mount" not in new and "mount" not in join
    if shared_mountns:
        from ociruntime.linux import host_mounts

        before = host_mounts.mounts_under(rootfs)
    parent_chan, bootstrap_pid = fork_container_side(
        lambda chan: _container_side(ctx, chan),
        [start_fd, *join_fds.values(), *plan.idmapped.values()], console)
    spawned = Spawned(bootstrap_pid)
    try:
        if prepare is not None:
            cgroups = prepare()
        if not ctx.enters_cgroups:
            _place_bootstrap(cgroups, bootstrap_pid, parent_chan)
        faults.check("spawned")
        _serve(parent_chan, spawned, config, cgroups, linux, ctx)
        if shared_mountns:
            spawned.host_mounts = host_mounts.made_since(before, rootfs)
        return spawned
    except BaseException:
        spawned.kill_all()
        if shared_mountns:
            host_mounts.release(host_mounts.made_since(before, rootfs))
        raise
    finally:
        parent_chan.close()


def bootstrap_enters_cgroups(new: list[str], join: dict[str, str]) -> bool:
    """Whether the bootstrap can enter the cgroups itself when PREPARED comes: it still has
    the runtime's credentials (no user namespace) and /sys/fs/cgroup (no joined mount or
    cgroup namespace) by then."""
    return "user" not in new and not {"user", "mount", "cgroup"} & set(join)


def _place_bootstrap(cgroups: CgroupManager, pid: int, chan: Channel) -> None:
    """Move the bootstrap into the container's cgroups by pid (one that cannot enter them
    itself): the init it forks is born there. A bootstrap that already failed explains that
    better than the failed write does."""
    try:
        cgroups.add(pid)
    except RuntimeFailure:
        reason = chan.left_error()
        if reason:
            raise RuntimeFailure(reason) from None
        raise


def _container_side(ctx: InitContext, chan: Channel) -> NoReturn:
    """The forked child: load the container-side code (the parent prepares meanwhile), run."""
    from ociruntime.process.init import run_container_side

    run_container_side(ctx, chan)


def fork_container_side(child: Callable[[Channel], NoReturn], parent_fds: list[int],
                        console: _socket.socket | None,
                        cgroups: dict[str, str] | None = None) -> tuple[Channel, int]:
    """Fork the container side with its end of a fresh channel; in the parent, close what
    only the child needs (`parent_fds`, the console socket) and return our end and the pid.
    With `cgroups` (exec: they exist already) the child starts in their v2 directory
    (cgroups/join.py: born there, while no other thread of ours runs).

    We become a child subreaper first, so the init is still ours to reap if the bootstrap
    between us exits. A warm-up thread may still be waiting in the kernel: the child gets
    none of it but a close-on-exec fd, and our own placement write then shares its wait.
    """
    parent_chan, child_chan = Channel.pair()
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    try:
        if cgroups:
            from ociruntime.cgroups.join import fork_into

            pid = fork_into(cgroups)
        else:
            pid = os.fork()
    except BaseException:  # no child: close what it would have had
        for end in (parent_chan, child_chan):
            end.close()
        for fd in parent_fds:
            os.close(fd)
        raise
    if pid == 0:
        try:
            parent_chan.close()
            child(child_chan)
        finally:
            os._exit(1)  # the child must never return into the parent's code (and cleanup)
    child_chan.close()
    if console is not None:
        console.close()
    for fd in parent_fds:
        os.close(fd)
    return parent_chan, pid


def _hand_to_listener(msg: dict[str, Any], seccomp: dict[str, Any], config: dict[str, Any],
                      ctx: InitContext, pid: int) -> None:
    from ociruntime.linux.seccomp import send_to_listener

    fd = int(msg.get("fd", -1))
    if fd < 0:
        raise RuntimeFailure("seccomp: the container did not send its notify fd")
    state = {"ociVersion": str(config.get("ociVersion", "")), "id": ctx.container_id,
             "status": "creating", "pid": pid, "bundle": ctx.bundle,
             "annotations": config.get("annotations") or {}}
    try:
        send_to_listener(seccomp["listenerPath"], fd, state,
                         seccomp.get("listenerMetadata", ""))
    finally:
        os.close(fd)


def _serve(chan: Channel, spawned: Spawned, config: dict[str, Any], cgroups: CgroupManager,
           linux: dict[str, Any], ctx: InitContext) -> None:
    bootstrap_pid = spawned.bootstrap_pid
    expected = [ch.ASK_IDMAP, ch.INIT_PID] if "user" in ctx.new_namespaces else [ch.INIT_PID]
    if needs_creation_hooks(config):
        expected.append(ch.HOOKS)
    if ctx.seccomp is not None and ctx.seccomp.uses_notify:
        expected.append(ch.SECCOMP_FD)
    expected.append(ch.READY)
    for step in expected:
        if step == ch.INIT_PID:
            chan.send(ch.PREPARED, cgroups=cgroups.paths)  # the bootstrap may fork the init
        msg = chan.recv(INIT_TIMEOUT)
        if msg.get("type") != step:
            raise RuntimeFailure(f"protocol error: expected {step}, got {msg.get('type')}")
        if step == ch.ASK_IDMAP:
            _write_idmaps(bootstrap_pid, linux)
            chan.send(ch.IDMAP_DONE)
        elif step == ch.INIT_PID:
            pid = int(msg["pid"])
            spawned.init_pid = pid
            os.waitpid(bootstrap_pid, 0)
            spawned.bootstrap_reaped = True
            # born in the cgroups (its bootstrap was placed); the pids limit now that the
            # bootstrap is gone, before any process of the container can fork
            if (linux.get("resources") or {}).get("pids"):
                from ociruntime.cgroups.resources import apply_pids_limit

                apply_pids_limit(cgroups, linux["resources"])
            _set_initial_affinity(pid, config.get("process") or {})
            faults.check("placement")
            apply_process_limits(pid, config.get("process") or {})
            if linux.get("netDevices"):
                from ociruntime.linux.netdevices import move_devices

                move_devices(linux["netDevices"], f"/proc/{pid}/ns/net")
            chan.send(ch.GO, pid=pid)
        elif step == ch.HOOKS:
            state = state_for_hooks(ctx.container_id, "creating", spawned.init_pid, ctx.bundle,
                                    config.get("annotations"), str(config.get("ociVersion", "")))
            run_hooks(config, "prestart", state)
            run_hooks(config, "createRuntime", state)
            chan.send(ch.HOOKS_DONE)
        elif step == ch.SECCOMP_FD:
            _hand_to_listener(msg, linux["seccomp"], config, ctx, spawned.init_pid)
            chan.send(ch.HOOKS_DONE)
