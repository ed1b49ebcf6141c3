"""The container operations behind the CLI: create, start, state, kill, delete, list, run."""

from __future__ import annotations

import _signal
import os
import select
import time

from ociruntime import OCI_VERSION, faults
from ociruntime.errors import ContainerNotFound, ContainerNotRunning, RuntimeFailure
from ociruntime.record import record
from ociruntime.state import (
    ContainerState,
    StateDir,
    derive_status,
    init_alive,
    list_ids,
    process_start_time,
    utc_now,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ociruntime.cgroups.manager import CgroupManager


@record
class CreateOptions:
    """runc's create flags."""

    root: str
    container_id: str
    bundle: str
    pid_file: str | None = None
    console_socket: str | None = None
    no_pivot: bool = False
    no_new_keyring: bool = False
    preserve_fds: int = 0


def write_pid_file(path: str, pid: int) -> None:
    """Write the pid as a bare integer (no newline), atomically (temp + rename)."""
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _socket_activation(config: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """systemd socket activation, as runc does it: LISTEN_FDS fds meant for us (LISTEN_PID)
    reach the container's process at fd 3 on, ahead of --preserve-fds, with LISTEN_FDS=N and
    LISTEN_PID=1 added to its environment (not to the saved config, which exec starts from)."""
    try:
        count = int(os.environ.get("LISTEN_FDS", ""))
        ours = int(os.environ.get("LISTEN_PID", "")) == os.getpid()
    except ValueError:
        return config, 0
    if count <= 0 or not ours:
        return config, 0
    process = dict(config["process"])
    process["env"] = [*(process.get("env") or []), f"LISTEN_FDS={count}", "LISTEN_PID=1"]
    return {**config, "process": process}, count


def create(opts: CreateOptions, proxy_tty: bool = False
           ) -> tuple[StateDir, ContainerState, int | None]:
    """Create a container: on success it is `created`, its init waiting on exec.sock.

    With a terminal and no console socket (`proxy_tty`, foreground `run`), pyrunc keeps the
    pty master and returns it as the third element.
    """
    from ociruntime.config.loader import load_bundle
    from ociruntime.process.parent import spawn

    state_dir = StateDir(opts.root, opts.container_id)
    bundle = os.path.abspath(opts.bundle)
    config, rootfs = load_bundle(bundle)
    process = config.get("process")
    if not isinstance(process, dict):
        raise RuntimeFailure("invalid config: config.json: $.process: is required to create a "
                             "container")
    terminal = bool(process.get("terminal"))
    if terminal and not opts.console_socket and not proxy_tty:
        raise RuntimeFailure("cannot allocate tty if runc will detach without setting "
                             "console socket")
    linux = config.get("linux") or {}
    from ociruntime.config.preflight import check_host_support

    check_host_support(config)
    state_dir.claim()
    created = utc_now()
    cgroups: CgroupManager | None = None
    console, ours = None, None
    host_mounts: list[str] = []
    try:
        if terminal:
            from ociruntime.linux.console import console_endpoints, terminal_size_of_stdin

            console, ours = console_endpoints(opts.console_socket)
            if ours is not None and "consoleSize" not in process:
                process["consoleSize"] = terminal_size_of_stdin()
        faults.check("claimed")
        from ociruntime.cgroups.manager import CgroupManager, CgroupPermissionError

        planned = CgroupManager.for_config(linux.get("cgroupsPath"), opts.container_id)
        state = ContainerState(
            id=opts.container_id, pid=0, pid_start=0, bundle=bundle, rootfs=rootfs,
            created=created, oci_version=str(config.get("ociVersion", OCI_VERSION)),
            annotations=config.get("annotations") or {}, cgroup_paths={},
            config=config, creator=os.getpid(), creator_start=process_start_time(os.getpid()) or 0)

        def prepare_host() -> CgroupManager:
            """After the fork (the child loads its code meanwhile): cgroups, state, limits."""
            nonlocal cgroups
            cgroups = planned
            # the state names the cgroups before they exist: killed between the two, this
            # create still leaves delete --force what it needs to remove them
            cgroups.plan()
            state.cgroup_paths = cgroups.to_state()
            state_dir.write(state)
            faults.check("planned")
            try:
                changed = cgroups.create()
            except CgroupPermissionError:
                # rootless without a delegated cgroup: like runc, go on without cgroups
                # unless the config asks for limits that need them
                if os.geteuid() == 0 or _asks_for_limits(linux):
                    raise
                cgroups.destroy()
                cgroups = CgroupManager({})
                changed = True
            if changed:
                state.cgroup_paths = cgroups.to_state()
                state_dir.write(state)
            faults.check("cgroups")
            resources = linux.get("resources")
            if resources:
                from ociruntime.cgroups.resources import apply_resources

                apply_resources(cgroups, resources, initial=True, pids=False)
            return cgroups

        _preload_resource_code(linux.get("resources"))
        listener = _start_listener(state_dir.start_socket)
        init_config, listen_fds = _socket_activation(config)
        spawned = spawn(init_config, bundle, rootfs, listener, planned, prepare=prepare_host,
                        no_pivot=opts.no_pivot, preserve_fds=listen_fds + opts.preserve_fds,
                        console=console, container_id=opts.container_id,
                        new_keyring=not opts.no_new_keyring)
        host_mounts = state.host_mounts = spawned.host_mounts
        master = None
        if ours is not None:
            from ociruntime.linux.console import receive_master

            master = receive_master(ours)
        state.pid = spawned.init_pid
        state.pid_start = process_start_time(spawned.init_pid) or 0
        state.creator = state.creator_start = 0
        state_dir.write(state)
        faults.check("recorded")
        if opts.pid_file:
            write_pid_file(opts.pid_file, spawned.init_pid)
        return state_dir, state, master
    except BaseException:
        from ociruntime.cgroups import warmup  # started by spawn for a bootstrap moved by pid

        warmup.stop()
        if host_mounts:
            _release_host_mounts(host_mounts)
        if cgroups is not None:
            _kill_cgroup(cgroups)
            try:
                cgroups.destroy()
            except RuntimeFailure:
                pass
        state_dir.remove()
        raise
    finally:
        for sock in (console, ours):
            if sock is not None:
                sock.close()


def _release_host_mounts(points: list[str]) -> None:
    """Detach what a container without its own mount namespace mounted in ours."""
    from ociruntime.linux.host_mounts import release

    release(points)


def _asks_for_limits(linux: dict[str, Any]) -> bool:
    resources = dict(linux.get("resources") or {})
    resources.pop("devices", None)
    return any(bool(v) for v in resources.values())


def _start_listener(path: str) -> int:
    """The socket `start` connects to. The init inherits the listening fd and accepts on it
    after pivot_root, so waiting for start needs no path, and no /proc, in the container."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(1)
    except OSError as e:
        sock.close()
        raise RuntimeFailure(f"start socket {path}: {e.strerror}") from None
    return sock.detach()


def _preload_resource_code(resources: dict[str, Any] | None) -> None:
    """Import the modules prepare_host will need before the fork, not after: an import in a
    freshly forked process copies every shared page it touches (measured here: 0.2 ms before
    the fork, 1.2-1.9 ms after)."""
    if resources:
        import ociruntime.cgroups.resources  # noqa: F401
        if resources.get("devices") is not None:
            import ociruntime.cgroups.devices  # noqa: F401


def _cgroups_of(state: ContainerState) -> CgroupManager:
    """The recorded container's cgroups (the manager is loaded only by commands that need it:
    `state` and `start` do not)."""
    from ociruntime.cgroups.manager import CgroupManager

    return CgroupManager.from_state(state.cgroup_paths)


def _kill_cgroup(cgroups: CgroupManager, timeout: float = 5.0) -> None:
    """SIGKILL what is left in the container's cgroup until it is empty, but only in a cgroup
    pyrunc created: a config may name an existing cgroup shared with other processes."""
    if not cgroups.owns_leaves():
        return
    deadline = time.monotonic() + timeout
    while cgroups.pids() and time.monotonic() < deadline:
        cgroups.kill_all(_signal.SIGKILL)
        time.sleep(0.001)


def recorded(root: str, container_id: str) -> tuple[StateDir, ContainerState]:
    """The container's state dir and recorded state; 'does not exist' if none."""
    state_dir = StateDir(root, container_id)
    if not state_dir.exists():
        raise ContainerNotFound(container_id)
    return state_dir, state_dir.load()


def load(root: str, container_id: str) -> tuple[StateDir, ContainerState, str]:
    """The container's state dir, recorded state and live status; 'does not exist' if none."""
    state_dir, state = recorded(root, container_id)
    return state_dir, state, derive_status(state_dir, state)


def start(root: str, container_id: str) -> None:
    """Release a created container's init (it execs the user process)."""
    state_dir, state = recorded(root, container_id)
    state_dir.lock()
    try:
        status = derive_status(state_dir, state)  # under the lock only: it decides
        if status == "stopped":
            raise RuntimeFailure("cannot start a container that has stopped")
        if status != "created":
            raise RuntimeFailure(f"cannot start an already {status} container")
        release_init(state_dir, state)
    finally:
        state_dir.unlock()


def release_init(state_dir: StateDir, state: ContainerState) -> None:
    """Connect to exec.sock so the waiting init goes on; read its answer (`0`, or `1` and the
    error of a startContainer hook); remove the socket."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    answer = b""
    try:
        try:
            sock.connect(state_dir.start_socket)
        except FileNotFoundError:
            raise RuntimeFailure(f"cannot start container {state.id}: its start socket "
                                 f"{state_dir.start_socket} is missing (delete --force it)"
                                 ) from None
        except OSError:
            raise RuntimeFailure("cannot start a container that has stopped") from None
        try:
            os.unlink(state_dir.start_socket)
        except FileNotFoundError:
            pass
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        while True:
            if poller.poll(100):
                answer = sock.recv(4096)
                break
            if not init_alive(state):
                break
    finally:
        sock.close()
    if not answer:
        raise RuntimeFailure("cannot start a container that has stopped")
    if answer[:1] != b"0":
        _wait_dead(state, 5.0)
        raise RuntimeFailure(answer[1:].decode(errors="replace") or "container init failed")
    _run_poststart(state)


def _hook_state(state: ContainerState, status: str) -> bytes:
    from ociruntime.hooks import state_for_hooks

    return state_for_hooks(state.id, status, 0 if status == "stopped" else state.pid,
                           state.bundle, state.annotations, state.oci_version)


def _run_poststart(state: ContainerState) -> None:
    """poststart hooks; if one fails the container is stopped and start fails (spec 1.3)."""
    from ociruntime.hooks import hooks_of, run_hooks

    if not hooks_of(state.config, "poststart"):
        return
    try:
        run_hooks(state.config, "poststart", _hook_state(state, "running"))
    except RuntimeFailure:
        try:
            os.kill(state.pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_dead(state, 5.0)
        raise


def _run_poststop(state: ContainerState) -> None:
    """poststop hooks after the container is gone; a failure is only a warning."""
    from ociruntime import log
    from ociruntime.hooks import hooks_of, run_hook

    for index, hook in enumerate(hooks_of(state.config, "poststop")):
        try:
            run_hook(hook, _hook_state(state, "stopped"), "poststop", index)
        except RuntimeFailure as e:
            log.warning(str(e))


def state_json(root: str, container_id: str) -> dict[str, Any]:
    """The runc-shaped `state` document."""
    _, state, status = load(root, container_id)
    return _public_state(state, status)


def _public_state(state: ContainerState, status: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ociVersion": state.oci_version,
        "id": state.id,
        "pid": 0 if status == "stopped" else state.pid,
        "status": status,
        "bundle": state.bundle,
        "rootfs": state.rootfs,
        "created": state.created,
    }
    if state.annotations:
        doc["annotations"] = state.annotations
    doc["owner"] = state.owner
    return doc


def kill(root: str, container_id: str, sig: int, all_processes: bool = False) -> None:
    """Send `sig` to the init (or, with --all, to every process in the container's cgroup)."""
    _, state, status = load(root, container_id)
    if status in ("stopped", "creating") and not all_processes:
        raise ContainerNotRunning()
    if all_processes:
        cgroups = _cgroups_of(state)
        if status == "stopped" and not cgroups.pids():
            return  # nothing left to signal: a success, as in runc 1.1.5
        cgroups.kill_all(sig)
        return
    if state.pid <= 0:
        raise ContainerNotRunning()
    try:
        os.kill(state.pid, sig)
    except ProcessLookupError:
        raise ContainerNotRunning() from None


def _wait_dead(state: ContainerState, timeout: float = 10.0,
               cgroups: CgroupManager | None = None) -> bool:
    """Wait until the init is gone, or (given the cgroups) until nothing is left in them.

    An init killed with processes of its PID namespace still around (exec'd ones, whose
    parent is outside) finishes dying only when those are reaped by their parent; it has left
    its cgroups already, so an empty cgroup is as good as a dead init for cleaning up.
    """
    deadline = time.monotonic() + timeout
    while init_alive(state):
        if cgroups is not None and cgroups.owns_leaves() and not cgroups.pids():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def delete(root: str, container_id: str, force: bool = False) -> None:
    """Remove a stopped (or created; with --force any) container and everything it owns."""
    state_dir = StateDir(root, container_id)
    if not state_dir.exists():
        raise ContainerNotFound(container_id)
    state_dir.lock()
    try:
        try:
            state = state_dir.load()
        except ContainerNotFound:
            if force:  # a create that died before recording state: remove the leftovers
                state_dir.remove()
                return
            raise
        status = derive_status(state_dir, state)
        if status in ("running", "paused", "creating") and not force:
            raise RuntimeFailure(
                f"cannot delete container {container_id} that is not stopped: {status}")
        destroy(state_dir, state, status)
    finally:
        state_dir.unlock()


def destroy(state_dir: StateDir, state: ContainerState, status: str) -> None:
    """Kill whatever still runs, remove the cgroups, then the state dir."""
    cgroups = _cgroups_of(state)
    if status != "stopped" and state.pid > 0:
        try:
            os.kill(state.pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass
        _kill_cgroup(cgroups)
        _wait_dead(state, cgroups=cgroups)
    _kill_cgroup(cgroups)
    if state.host_mounts:
        _release_host_mounts(state.host_mounts)
    cgroups.destroy()
    state_dir.remove()
    _run_poststop(state)


def list_states(root: str) -> list[dict[str, Any]]:
    """`state` documents of every container under the root (unreadable ones skipped)."""
    import pwd

    result = []
    for container_id in list_ids(root):
        try:
            doc = state_json(root, container_id)
            uid = os.stat(os.path.join(root, container_id)).st_uid
        except (RuntimeFailure, OSError):
            continue
        try:
            doc["owner"] = pwd.getpwuid(uid).pw_name
        except KeyError:
            doc["owner"] = f"#{uid}"
        result.append(doc)
    return result


_NOT_FORWARDED = {_signal.SIGKILL, _signal.SIGSTOP, _signal.SIGCHLD}


def run(opts: CreateOptions, detach: bool) -> int:
    """create + start; without detach wait for the init, forward signals, delete, return its
    exit code (128+signal when killed)."""
    state_dir, state, master = create(opts, proxy_tty=not detach)
    try:
        release_init(state_dir, state)
    except BaseException:
        destroy(state_dir, state, "created")
        raise
    if detach:
        return 0
    try:
        if master is not None:
            from ociruntime.linux.tty_proxy import proxy

            code = proxy(master, state.pid)
        else:
            code = wait_forwarding(state.pid)
    except ChildProcessError:
        _wait_dead(state, timeout=1e9)
        code = 0
    state_dir.lock()
    try:
        destroy(state_dir, state, "stopped")
    finally:
        state_dir.unlock()
    return code


@record
class ExecOptions:
    """runc's exec flags."""

    root: str
    container_id: str
    process_file: str | None = None
    args: list[str] | None = None
    tty: bool = False
    cwd: str | None = None
    env: list[str] | None = None
    user: str | None = None
    additional_gids: list[int] | None = None
    caps: list[str] | None = None
    no_new_privs: bool = False
    apparmor: str | None = None
    process_label: str | None = None
    console_socket: str | None = None
    detach: bool = False
    pid_file: str | None = None
    preserve_fds: int = 0
    ignore_paused: bool = False


class ExecFailure(RuntimeFailure):
    """exec failed before the process ran (runc exits 255 for these)."""


def _exec_process_spec(opts: ExecOptions, state: ContainerState) -> dict[str, Any]:
    from ociruntime.jsonio import clone, loads

    if opts.process_file:
        try:
            with open(opts.process_file) as f:
                process = loads(f.read())
        except (OSError, ValueError) as e:
            raise ExecFailure(f"--process {opts.process_file}: {e}") from None
        from ociruntime.config.validate import validate_process

        validate_process(process, opts.process_file)
        # what the file leaves out comes from the container's config, as in runc: without
        # this an exec'd process would keep the runtime's full capabilities and bounding set
        base = state.config.get("process") or {}
        if "capabilities" not in process and "capabilities" in base:
            process["capabilities"] = clone(base["capabilities"])
        for key in ("apparmorProfile", "selinuxLabel"):  # rlimits: the runtime's (runc's)
            if not process.get(key) and base.get(key):
                process[key] = clone(base[key])
        return process
    process = clone(state.config.get("process") or {})
    if not opts.args:
        raise ExecFailure("exec needs a command (or --process FILE)")
    process["args"] = list(opts.args)
    process["terminal"] = opts.tty
    if opts.cwd:
        process["cwd"] = opts.cwd
    if opts.env:
        process["env"] = list(process.get("env") or []) + list(opts.env)
    if opts.user:
        uid, _, gid = opts.user.partition(":")
        try:
            process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
        except ValueError:
            raise ExecFailure(f"--user {opts.user!r}: expected uid[:gid]") from None
    if opts.additional_gids:
        process.setdefault("user", {})["additionalGids"] = list(opts.additional_gids)
    if opts.caps:
        from ociruntime.config.known import CAPABILITIES

        caps = process.setdefault("capabilities", {})
        for cap in opts.caps:
            if cap not in CAPABILITIES:
                raise ExecFailure(f"--cap {cap}: unknown capability")
            for kind in ("bounding", "effective", "permitted", "ambient"):
                caps.setdefault(kind, [])
                if cap not in caps[kind]:
                    caps[kind].append(cap)
    if opts.no_new_privs:
        process["noNewPrivileges"] = True
    if opts.apparmor:
        process["apparmorProfile"] = opts.apparmor
    if opts.process_label:
        process["selinuxLabel"] = opts.process_label
    return process


def exec_in(opts: ExecOptions) -> int:
    """Run a process inside a running container; its exit code, or 0 when detached."""
    from ociruntime.process.tenant import spawn_tenant

    state_dir, state, status = load(opts.root, opts.container_id)
    if status == "stopped":
        raise ExecFailure("cannot exec in a stopped container")
    if status == "paused" and not opts.ignore_paused:
        raise ExecFailure("cannot exec in a paused container (use --ignore-paused to override)")
    process = _exec_process_spec(opts, state)
    terminal = bool(process.get("terminal"))
    if terminal and opts.detach and not opts.console_socket:
        raise ExecFailure("cannot allocate tty if runc will detach without setting console socket")
    cgroups = _cgroups_of(state)
    console, ours = None, None
    if terminal:
        from ociruntime.linux.console import console_endpoints, terminal_size_of_stdin

        console, ours = console_endpoints(opts.console_socket)
        if ours is not None and "consoleSize" not in process:
            process["consoleSize"] = terminal_size_of_stdin()
    try:
        pid = spawn_tenant(state.pid, state.config, process, cgroups, console=console,
                           preserve_fds=opts.preserve_fds)
        master = None
        if ours is not None:
            from ociruntime.linux.console import receive_master

            master = receive_master(ours)
    finally:
        for sock in (console, ours):
            if sock is not None:
                sock.close()
    if opts.pid_file:
        write_pid_file(opts.pid_file, pid)
    if opts.detach:
        return 0
    if master is not None:
        from ociruntime.linux.tty_proxy import proxy

        return proxy(master, pid)
    return wait_forwarding(pid)


def wait_forwarding(pid: int) -> int:
    """Wait for our child `pid`, forwarding signals to it; its exit code (128+sig if killed)."""

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    handled = [s for s in range(1, 32) if s not in _NOT_FORWARDED]
    for signum in handled:
        try:
            _signal.signal(signum, forward)
        except (OSError, ValueError):
            pass
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        for signum in handled:
            try:
                _signal.signal(signum, _signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def pause(root: str, container_id: str) -> None:
    """Freeze every process of a running (or created) container, as runc does."""
    _, state, status = load(root, container_id)
    if status not in ("running", "created"):
        raise RuntimeFailure("container not running")
    _cgroups_of(state).freeze(True)


def resume(root: str, container_id: str) -> None:
    """Thaw a paused container."""
    _, state, status = load(root, container_id)
    if status != "paused":
        raise RuntimeFailure("container not paused")
    _cgroups_of(state).freeze(False)


def pids(root: str, container_id: str) -> list[int]:
    """Host pids of every process in the container's cgroup."""
    _, state = recorded(root, container_id)
    return _cgroups_of(state).pids()


def ps_table(pid_list: list[int], ps_args: list[str]) -> str:
    """Run the host's `ps` with `ps_args` and keep the header and the container's rows."""
    import subprocess

    try:
        done = subprocess.run(["ps", *ps_args], capture_output=True, text=True)
    except OSError as e:
        raise RuntimeFailure(f"ps: {e.strerror}") from None
    if done.returncode != 0:
        why = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise RuntimeFailure(f"ps {' '.join(ps_args)}: {why}")
    out = done.stdout
    lines = out.splitlines()
    if not lines:
        return ""
    header = lines[0].split()
    if "PID" not in header:
        raise RuntimeFailure("ps output has no PID column")
    column = header.index("PID")
    wanted = {str(p) for p in pid_list}
    kept = [lines[0]] + [ln for ln in lines[1:] if len(ln.split()) > column
                         and ln.split()[column] in wanted]
    return "\n".join(kept) + "\n"
