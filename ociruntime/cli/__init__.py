"""`pyrunc`: runc's command line, one thin handler per command."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

from ociruntime import OCI_VERSION, __version__, log
from ociruntime.cli.parser import build_parser
from ociruntime.errors import RuntimeFailure


def _print_json(doc: object, indent: int | None = 2) -> None:
    sys.stdout.write(json.dumps(doc, indent=indent) + "\n")


def cmd_create(args) -> int:  # type: ignore[no-untyped-def]
    from ociruntime import container

    container.create(_create_options(args))
    return 0


def _create_options(args):  # type: ignore[no-untyped-def]
    from ociruntime.container import CreateOptions

    return CreateOptions(
        root=args.root,
        container_id=args.container_id,
        bundle=args.bundle or os.getcwd(),
        pid_file=args.pid_file,
        console_socket=getattr(args, "console_socket", None),
        no_pivot=args.no_pivot,
        no_new_keyring=args.no_new_keyring,
        preserve_fds=args.preserve_fds,
    )


def cmd_run(args) -> int:  # type: ignore[no-untyped-def]
    from ociruntime import container

    return container.run(_create_options(args), detach=args.detach)


def cmd_start(args) -> int:  # type: ignore[no-untyped-def]
    from ociruntime import container

    container.start(args.root, args.container_id)
    return 0


def cmd_state(args) -> int:  # type: ignore[no-untyped-def]
    from ociruntime import container

    _print_json(container.state_json(args.root, args.container_id))
    return 0


def cmd_kill(args) -> int:  # type: ignore[no-untyped-def]
    from ociruntime import container
    from ociruntime.config.known import parse_signal

    try:
        sig = parse_signal(args.signal)
    except ValueError as e:
        raise RuntimeFailure(str(e)) from None
    container.kill(args.root, args.container_id, sig, all_processes=args.all)
    return 0


def cmd_delete(args) -> int:  # type: ignore[no-untyped-def]
    from ociruntime import container
    from ociruntime.errors import ContainerNotFound

    try:
        container.delete(args.root, args.container_id, force=args.force)
    except ContainerNotFound:
        if args.force:
            return 0
        raise
    return 0


def cmd_list(args) -> int:  # type: ignore[no-untyped-def]
    from ociruntime import container
    from ociruntime.cli.table import render_list

    states = container.list_states(args.root)
    if args.quiet:
        for s in states:
            sys.stdout.write(s["id"] + "\n")
    elif args.format == "json":
        sys.stdout.write(json.dumps(states or None) + "\n")
    else:
        sys.stdout.write(render_list(states))
    return 0


def cmd_exec(args) -> int:  # type: ignore[no-untyped-def]
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


def cmd_pause(args) -> int:  # type: ignore[no-untyped-def]
    from ociruntime import container

    container.pause(args.root, args.container_id)
    return 0


def cmd_resume(args) -> int:  # type: ignore[no-untyped-def]
    from ociruntime import container

    container.resume(args.root, args.container_id)
    return 0


def cmd_ps(args) -> int:  # type: ignore[no-untyped-def]
    from ociruntime import container

    pids = container.pids(args.root, args.container_id)
    if args.format == "json":
        sys.stdout.write(json.dumps(pids, separators=(",", ":")) + "\n")
        return 0
    sys.stdout.write(container.ps_table(pids, args.ps_args or ["-ef"]))
    return 0


def cmd_features(args) -> int:  # type: ignore[no-untyped-def]
    from ociruntime.features import features

    _print_json(features())
    return 0


def cmd_spec(args) -> int:  # type: ignore[no-untyped-def]
    from ociruntime.config.defaults import default_spec

    path = os.path.join(args.bundle or ".", "config.json")
    doc = json.dumps(default_spec(rootless=args.rootless_spec), indent="\t")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        raise RuntimeFailure(f"file {path} exists: remove it first") from None
    except OSError as e:
        raise RuntimeFailure(f"create {path}: {e.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(doc)
    return 0


HANDLERS: dict[str, Callable[..., int]] = {
    "features": cmd_features,
    "spec": cmd_spec,
    "exec": cmd_exec,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "ps": cmd_ps,
    "create": cmd_create,
    "run": cmd_run,
    "start": cmd_start,
    "state": cmd_state,
    "kill": cmd_kill,
    "delete": cmd_delete,
    "list": cmd_list,
}


def main(argv: list[str] | None = None) -> None:
    """Parse, dispatch, report: exit status is the handler's, 1 on any failure."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        sys.stdout.write(f"pyrunc version {__version__}\nspec: {OCI_VERSION}\n")
        sys.exit(0)
    log.configure(args.log, args.log_format, args.debug)
    if args.command is None:
        parser.print_help(sys.stderr)
        sys.exit(1)
    code = 1
    try:
        if args.systemd_cgroup:
            raise RuntimeFailure("--systemd-cgroup is not supported yet")
        code = HANDLERS[args.command](args)
    except RuntimeFailure as e:
        log.error(str(e))
    except KeyboardInterrupt:
        log.error("interrupted")
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        log.error(f"{args.command}{where}: {e.strerror or e}")
    except Exception as e:  # noqa: BLE001 - never a traceback; the debug log keeps it
        import traceback

        log.debug("".join(traceback.format_exception(e)))
        log.error(f"{args.command}: internal error: {type(e).__name__}: {e}")
    sys.stdout.flush()
    os._exit(code)
