"""`pyrunc`: runc's command line, one thin handler per command.

Handlers import what their command needs and nothing more: the start of every command is on
the hot path of a container's lifecycle.
"""

from __future__ import annotations

import os
import sys

from ociruntime import OCI_VERSION, __version__, log
from ociruntime.cli.parser import Args, parse, usage
from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ociruntime.container import CreateOptions


def _default_root() -> str:
    """/run/pyrunc for root; $XDG_RUNTIME_DIR/pyrunc (or /tmp/pyrunc-UID) otherwise."""
    if os.geteuid() == 0:
        return "/run/pyrunc"
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return os.path.join(runtime_dir, "pyrunc")
    return f"/tmp/pyrunc-{os.geteuid()}"


def _out(text: str) -> None:
    os.write(1, text.encode())


def _create_options(args: Args) -> CreateOptions:
    from ociruntime.container import CreateOptions

    return CreateOptions(
        root=args.root,
        container_id=args.container_id,
        bundle=args.bundle or os.getcwd(),
        pid_file=args.pid_file,
        console_socket=args.console_socket,
        no_pivot=args.no_pivot,
        no_new_keyring=args.no_new_keyring,
        preserve_fds=args.preserve_fds,
    )


def cmd_create(args: Args) -> int:
    from ociruntime import container

    container.create(_create_options(args))
    return 0


def cmd_run(args: Args) -> int:
    from ociruntime import container

    return container.run(_create_options(args), detach=args.detach)


def cmd_start(args: Args) -> int:
    from ociruntime import container

    container.start(args.root, args.container_id)
    return 0


def cmd_state(args: Args) -> int:
    from ociruntime import container
    from ociruntime.jsonio import dumps_pretty

    _out(dumps_pretty(container.state_json(args.root, args.container_id)) + "\n")
    return 0


def cmd_kill(args: Args) -> int:
    from ociruntime import container
    from ociruntime.config.known import parse_signal

    try:
        sig = parse_signal(args.signal)
    except ValueError as e:
        raise RuntimeFailure(str(e)) from None
    container.kill(args.root, args.container_id, sig, all_processes=args.all)
    return 0


def cmd_delete(args: Args) -> int:
    from ociruntime import container
    from ociruntime.errors import ContainerNotFound

    try:
        container.delete(args.root, args.container_id, force=args.force)
    except ContainerNotFound:
        if args.force:
            return 0
        raise
    return 0


def cmd_list(args: Args) -> int:
    from ociruntime import container
    from ociruntime.cli.table import render_list
    from ociruntime.jsonio import dumps

    if args.format not in ("table", "json"):
        raise RuntimeFailure(f"invalid format option: {args.format}")
    states = container.list_states(args.root)
    if args.quiet:
        _out("".join(s["id"] + "\n" for s in states))
    elif args.format == "json":
        _out(dumps(states or None) + "\n")
    else:
        _out(render_list(states))
    return 0


def cmd_exec(args: Args) -> int:
    from ociruntime import container

    opts = container.ExecOptions(
        root=args.root, container_id=args.container_id, process_file=args.process,
        args=args.exec_args, tty=args.tty, cwd=args.cwd, env=args.env, user=args.user,
        additional_gids=args.additional_gids, caps=args.cap, no_new_privs=args.no_new_privs,
        apparmor=args.apparmor, process_label=args.process_label,
        console_socket=args.console_socket, detach=args.detach, pid_file=args.pid_file,
        preserve_fds=args.preserve_fds, ignore_paused=args.ignore_paused)
    try:
        return container.exec_in(opts)
    except RuntimeFailure as e:
        log.error(f"exec failed: {e}")
        return 255


def cmd_pause(args: Args) -> int:
    from ociruntime import container

    container.pause(args.root, args.container_id)
    return 0


def cmd_resume(args: Args) -> int:
    from ociruntime import container

    container.resume(args.root, args.container_id)
    return 0


def cmd_ps(args: Args) -> int:
    from ociruntime import container
    from ociruntime.jsonio import dumps

    if args.format not in ("table", "json"):
        raise RuntimeFailure(f"invalid format option: {args.format}")
    pids = container.pids(args.root, args.container_id)
    if args.format == "json":
        _out(dumps(pids or None) + "\n")  # runc prints a Go nil slice: null
        return 0
    _out(container.ps_table(pids, args.ps_args or ["-ef"]))
    return 0


def cmd_update(args: Args) -> int:
    from ociruntime.cgroups import update

    values = {dest: getattr(args, dest, None) for dest in
              (*update.FLAG_FIELDS, "l3_cache_schema", "mem_bw_schema")}
    update.refuse_rdt(values)
    if args.resources:
        resources = update.read_resources(args.resources)
    else:
        resources = update.resources_from_flags(values)
    update.update_container(args.root, args.container_id, resources)
    return 0


def cmd_events(args: Args) -> int:
    from ociruntime import events

    if args.stats:
        events.stats_once(args.root, args.container_id)
    else:
        events.follow(args.root, args.container_id, events.parse_duration(args.interval))
    return 0


def cmd_features(args: Args) -> int:
    from ociruntime.features import features
    from ociruntime.jsonio import dumps_pretty

    _out(dumps_pretty(features()) + "\n")
    return 0


def cmd_spec(args: Args) -> int:
    from ociruntime.config.defaults import default_spec
    from ociruntime.jsonio import dumps_pretty

    path = os.path.join(args.bundle or ".", "config.json")
    doc = dumps_pretty(default_spec(rootless=args.rootless_spec), indent="\t")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        raise RuntimeFailure(f"file {path} exists: remove it first") from None
    except OSError as e:
        raise RuntimeFailure(f"create {path}: {e.strerror}") from None
    try:
        os.write(fd, doc.encode())
    finally:
        os.close(fd)
    return 0


HANDLERS: dict[str, Callable[[Args], int]] = {
    "create": cmd_create,
    "run": cmd_run,
    "start": cmd_start,
    "state": cmd_state,
    "kill": cmd_kill,
    "delete": cmd_delete,
    "list": cmd_list,
    "exec": cmd_exec,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "ps": cmd_ps,
    "update": cmd_update,
    "events": cmd_events,
    "features": cmd_features,
    "spec": cmd_spec,
}


def main(argv: list[str] | None = None) -> None:
    """Parse, dispatch, report: exit status is the handler's, 1 on any failure."""
    code = 1
    command = "pyrunc"
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
        command = args.command or command
        log.configure(args.log, args.log_format, args.debug)
        if not args.root:
            args.root = _default_root()
        if args.version:
            _out(f"pyrunc version {__version__}\nspec: {OCI_VERSION}\n")
            os._exit(0)
        if args.help or args.command is None:
            _out(usage(args.command))
            os._exit(0 if args.help else 1)
        if args.log_format not in ("text", "json"):
            raise RuntimeFailure(f"unknown log-format {args.log_format!r}")
        if args.systemd_cgroup:
            raise RuntimeFailure("--systemd-cgroup is not supported yet")
        code = HANDLERS[args.command](args)
    except RuntimeFailure as e:
        if (given := getattr(e, "global_args", None)) is not None:
            log.configure(given.log, given.log_format, given.debug)
        log.error(str(e))
    except KeyboardInterrupt:
        log.error("interrupted")
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        log.error(f"{command}{where}: {e.strerror or e}")
    except Exception as e:  # noqa: BLE001 - never a traceback; the debug log keeps it
        import traceback

        log.debug("".join(traceback.format_exception(e)))
        log.error(f"{command}: internal error: {type(e).__name__}: {e}")
    os._exit(code)
