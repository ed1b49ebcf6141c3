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


HANDLERS: dict[str, Callable[..., int]] = {
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
    sys.stdout.flush()
    os._exit(code)
