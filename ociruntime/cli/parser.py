"""runc-compatible argument parsing (global flags before the command, runc's flag names)."""

from __future__ import annotations

import argparse
import sys

from ociruntime.state import DEFAULT_ROOT


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit status 1."""

    def error(self, message: str) -> None:  # type: ignore[override]
        from ociruntime import log

        command = self.prog.removeprefix("pyrunc").strip()
        log.error(f"{command}: {message}" if command else message)
        sys.exit(1)


def _add_create_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", "-b", default=None, help="path to the bundle directory")
    p.add_argument("--pid-file", default=None, help="file to write the init's pid to")
    p.add_argument("--console-socket", default=None, help="unix socket to send the pty master")
    p.add_argument("--pidfd-socket", default=None, help=argparse.SUPPRESS)
    p.add_argument("--no-pivot", action="store_true", help="use MS_MOVE+chroot, not pivot_root")
    p.add_argument("--no-new-keyring", action="store_true", help="do not create a session keyring")
    p.add_argument("--preserve-fds", type=int, default=0, help="pass N extra fds (from 3)")
    p.add_argument("container_id", metavar="ID")


def build_parser() -> argparse.ArgumentParser:
    """The whole `pyrunc` command line."""
    parser = _Parser(prog="pyrunc", description="OCI runtime (runc-compatible) in Python")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="state root directory")
    parser.add_argument("--log", default=None, help="log file")
    parser.add_argument("--log-format", default="text", choices=["text", "json"])
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--systemd-cgroup", action="store_true")
    parser.add_argument("--rootless", nargs="?", const="true", default="auto")
    parser.add_argument("--criu", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--version", "-v", action="store_true")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    _add_create_flags(sub.add_parser("create", help="create a container"))
    run = sub.add_parser("run", help="create and start a container")
    _add_create_flags(run)
    run.add_argument("--detach", "-d", action="store_true")
    run.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--no-subreaper", action="store_true", help=argparse.SUPPRESS)

    for name, text in (("start", "start a created container"),
                       ("state", "print the container's state JSON")):
        sub.add_parser(name, help=text).add_argument("container_id", metavar="ID")

    kill = sub.add_parser("kill", help="signal the container's init")
    kill.add_argument("--all", "-a", action="store_true")
    kill.add_argument("container_id", metavar="ID")
    kill.add_argument("signal", nargs="?", default="SIGTERM")

    delete = sub.add_parser("delete", help="delete a container")
    delete.add_argument("--force", "-f", action="store_true")
    delete.add_argument("container_id", metavar="ID")

    ex = sub.add_parser("exec", help="run a process in a running container")
    ex.add_argument("--process", "-p", default=None, help="runtime-spec Process JSON file")
    ex.add_argument("--tty", "-t", action="store_true")
    ex.add_argument("--cwd", default=None)
    ex.add_argument("--env", "-e", action="append", default=[])
    ex.add_argument("--user", "-u", default=None, help="uid[:gid]")
    ex.add_argument("--additional-gids", "-g", action="append", type=int, default=[])
    ex.add_argument("--cap", "-c", action="append", default=[])
    ex.add_argument("--no-new-privs", action="store_true")
    ex.add_argument("--apparmor", default=None)
    ex.add_argument("--process-label", default=None)
    ex.add_argument("--console-socket", default=None)
    ex.add_argument("--pidfd-socket", default=None, help=argparse.SUPPRESS)
    ex.add_argument("--detach", "-d", action="store_true")
    ex.add_argument("--pid-file", default=None)
    ex.add_argument("--preserve-fds", type=int, default=0)
    ex.add_argument("--cgroup", action="append", default=[], help=argparse.SUPPRESS)
    ex.add_argument("--ignore-paused", action="store_true")
    ex.add_argument("container_id", metavar="ID")
    ex.add_argument("exec_args", metavar="COMMAND", nargs=argparse.REMAINDER)

    for name, text in (("pause", "freeze all processes of a container"),
                       ("resume", "thaw a paused container")):
        sub.add_parser(name, help=text).add_argument("container_id", metavar="ID")

    ps = sub.add_parser("ps", help="list the container's processes")
    ps.add_argument("--format", "-f", default="table", choices=["table", "json"])
    ps.add_argument("container_id", metavar="ID")
    ps.add_argument("ps_args", nargs=argparse.REMAINDER)

    sub.add_parser("features", help="print the features this runtime implements (JSON)")
    spec = sub.add_parser("spec", help="write a default config.json")
    spec.add_argument("--bundle", "-b", default=None)
    spec.add_argument("--rootless", dest="rootless_spec", action="store_true")

    lst = sub.add_parser("list", help="list containers")
    lst.add_argument("--format", "-f", default="table", choices=["table", "json"])
    lst.add_argument("--quiet", "-q", action="store_true")
    return parser
