"""The container operations behind the CLI: create, start, state, kill, delete, list, run."""

from __future__ import annotations

import os
import select
import signal
import time
from dataclasses import dataclass
from typing import Any

from ociruntime import OCI_VERSION
from ociruntime.cgroups.manager import CgroupManager
from ociruntime.errors import ContainerNotFound, ContainerNotRunning, RuntimeFailure
from ociruntime.state import (
    ContainerState,
    StateDir,
    derive_status,
    init_alive,
    list_ids,
    process_start_time,
    utc_now,
)


@dataclass
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


def create(opts: CreateOptions) -> tuple[StateDir, ContainerState]:
    """Create a container: on success it is `created`, its init blocked on exec.fifo."""
    from ociruntime.config.loader import load_bundle
    from ociruntime.process.parent import spawn

    state_dir = StateDir(opts.root, opts.container_id)
    bundle = os.path.abspath(opts.bundle)
    config, rootfs = load_bundle(bundle)
    process = config.get("process")
    if not isinstance(process, dict):
        raise RuntimeFailure("invalid config: config.json: $.process: is required to create a "
                             "container")
    if process.get("terminal") and not opts.console_socket:
        raise RuntimeFailure("cannot allocate tty if runc will detach without setting "
                             "console socket")
    linux = config.get("linux") or {}
    state_dir.claim()
    cgroups: CgroupManager | None = None
    try:
        cgroups = CgroupManager.for_config(linux.get("cgroupsPath"), opts.container_id)
        cgroups.create()
        os.mkfifo(state_dir.fifo, 0o622)
        os.chmod(state_dir.fifo, 0o622)
        _chown_to_container_root(state_dir.fifo, linux)
        spawned = spawn(config, bundle, rootfs, state_dir.fifo, cgroups,
                        no_pivot=opts.no_pivot, preserve_fds=opts.preserve_fds,
                        console_socket=opts.console_socket, container_id=opts.container_id,
                        new_keyring=not opts.no_new_keyring)
        state = ContainerState(
            id=opts.container_id,
            pid=spawned.init_pid,
            pid_start=process_start_time(spawned.init_pid) or 0,
            bundle=bundle,
            rootfs=rootfs,
            created=utc_now(),
            oci_version=str(config.get("ociVersion", OCI_VERSION)),
            owner="",
            annotations=config.get("annotations") or {},
            cgroup_paths=cgroups.to_state(),
            config=config,
        )
        state_dir.write(state)
        if opts.pid_file:
            write_pid_file(opts.pid_file, spawned.init_pid)
        return state_dir, state
    except BaseException:
        if cgroups is not None:
            _kill_cgroup(cgroups)
            try:
                cgroups.destroy()
            except RuntimeFailure:
                pass
        state_dir.remove()
        raise


def _chown_to_container_root(path: str, linux: dict[str, Any]) -> None:
    """Let the container's root (a mapped host id with a user namespace) open the fifo."""
    uid = _host_id(linux.get("uidMappings") or [], 0)
    gid = _host_id(linux.get("gidMappings") or [], 0)
    if uid or gid:
        os.chown(path, uid, gid)


def _host_id(mappings: list[dict[str, int]], container_id: int) -> int:
    for m in mappings:
        if m["containerID"] <= container_id < m["containerID"] + m["size"]:
            return m["hostID"] + container_id - m["containerID"]
    return 0


def _kill_cgroup(cgroups: CgroupManager) -> None:
    for pid in cgroups.pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def load(root: str, container_id: str) -> tuple[StateDir, ContainerState, str]:
    """The container's state dir, recorded state and live status; 'does not exist' if none."""
    state_dir = StateDir(root, container_id)
    if not state_dir.exists():
        raise ContainerNotFound(container_id)
    state = state_dir.load()
    return state_dir, state, derive_status(state_dir, state)


def start(root: str, container_id: str) -> None:
    """Release a created container's init (it execs the user process)."""
    state_dir, state, status = load(root, container_id)
    state_dir.lock()
    try:
        status = derive_status(state_dir, state)
        if status == "stopped":
            raise RuntimeFailure("cannot start a container that has stopped")
        if status != "created":
            raise RuntimeFailure(f"cannot start an already {status} container")
        release_init(state_dir, state)
    finally:
        state_dir.unlock()


def release_init(state_dir: StateDir, state: ContainerState) -> None:
    """Open exec.fifo so the blocked init can go on; wait for its byte; remove the fifo."""
    try:
        fd = os.open(state_dir.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise RuntimeFailure("cannot start an already running container") from None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            if poller.poll(100):
                if os.read(fd, 1):
                    break
            if not init_alive(state):
                raise RuntimeFailure("cannot start a container that has stopped")
    finally:
        os.close(fd)
    try:
        os.unlink(state_dir.fifo)
    except FileNotFoundError:
        pass


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
    if status == "stopped" and not all_processes:
        raise ContainerNotRunning()
    if all_processes:
        pids = CgroupManager.from_state(state.cgroup_paths).pids()
        if not pids and status == "stopped":
            raise ContainerNotRunning()
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return
    try:
        os.kill(state.pid, sig)
    except ProcessLookupError:
        raise ContainerNotRunning() from None


def _wait_dead(state: ContainerState, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while init_alive(state):
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
        if status in ("running", "paused") and not force:
            raise RuntimeFailure(
                f"cannot delete container {container_id} that is not stopped: {status}")
        destroy(state_dir, state, status)
    finally:
        state_dir.unlock()


def destroy(state_dir: StateDir, state: ContainerState, status: str) -> None:
    """Kill whatever still runs, remove the cgroups, then the state dir."""
    cgroups = CgroupManager.from_state(state.cgroup_paths)
    if status != "stopped":
        try:
            os.kill(state.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if status == "paused":
            _thaw(state)
        _wait_dead(state)
    _kill_cgroup(cgroups)
    cgroups.destroy()
    state_dir.remove()


def _thaw(state: ContainerState) -> None:
    path = state.cgroup_paths.get("freezer")
    try:
        if path:
            with open(os.path.join(path, "freezer.state"), "w") as f:
                f.write("THAWED")
        elif state.cgroup_paths.get(""):
            with open(os.path.join(state.cgroup_paths[""], "cgroup.freeze"), "w") as f:
                f.write("0")
    except OSError:
        pass


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


_NOT_FORWARDED = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}


def run(opts: CreateOptions, detach: bool) -> int:
    """create + start; without detach wait for the init, forward signals, delete, return its
    exit code (128+signal when killed)."""
    state_dir, state = create(opts)
    try:
        release_init(state_dir, state)
    except BaseException:
        destroy(state_dir, state, "created")
        raise
    if detach:
        return 0
    pid = state.pid

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in range(1, 32):
        if signum not in _NOT_FORWARDED:
            try:
                signal.signal(signum, forward)
            except (OSError, ValueError):
                pass
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        _wait_dead(state, timeout=1e9)
        status = 0
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        code = 128 - code
    for signum in range(1, 32):
        if signum not in _NOT_FORWARDED:
            try:
                signal.signal(signum, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    state_dir.lock()
    try:
        destroy(state_dir, state, "stopped")
    finally:
        state_dir.unlock()
    return code
