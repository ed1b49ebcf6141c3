"""runc-compatible argument parsing."""

from __future__ import annotations

import pytest

from ociruntime.cli.parser import COMMANDS, parse, usage
from ociruntime.errors import RuntimeFailure


def test_global_flags_then_command():
    args = parse(["--root", "/r", "--log=/l.json", "--log-format", "json", "--debug",
                  "create", "--bundle", "/b", "--pid-file=/p", "id1"])
    assert (args.root, args.log, args.log_format, args.debug) == ("/r", "/l.json", "json", True)
    assert (args.command, args.bundle, args.pid_file, args.container_id) == (
        "create", "/b", "/p", "id1")


def test_short_flags_and_bool_values():
    args = parse(["run", "-d", "-b", "/b", "x"])
    assert args.detach and args.bundle == "/b"
    assert parse(["run", "--detach=false", "x"]).detach is False
    assert parse(["list", "-q", "-f", "json"]).quiet


def test_rootless_value_forms():
    assert parse(["--rootless=true", "list"]).rootless == "true"
    assert parse(["--rootless", "false", "list"]).rootless == "false"
    assert parse(["--rootless", "list"]).rootless == "true"


def test_kill_optional_signal():
    assert parse(["kill", "x"]).signal == "SIGTERM"
    args = parse(["kill", "--all", "x", "9"])
    assert args.all and args.signal == "9"


def test_exec_rest_is_the_command_line():
    args = parse(["exec", "-e", "A=1", "-e", "B=2", "-u", "1:2", "x", "sh", "-c", "ls -l"])
    assert args.env == ["A=1", "B=2"] and args.user == "1:2"
    assert args.container_id == "x" and args.exec_args == ["sh", "-c", "ls -l"]
    assert parse(["exec", "--process", "/p.json", "x"]).exec_args == []
    assert parse(["exec", "-g", "5", "-g", "6", "x", "id"]).additional_gids == [5, 6]


def test_ps_passes_ps_arguments():
    args = parse(["ps", "x", "-o", "pid,cmd"])
    assert args.ps_args == ["-o", "pid,cmd"]


@pytest.mark.parametrize("argv,message", [
    (["create"], "requires 1 argument"),
    (["create", "a", "b"], "requires 1 argument"),
    (["create", "--nope", "x"], "flag provided but not defined: --nope"),
    (["frobnicate"], "no such command"),
    (["run", "--preserve-fds", "many", "x"], "invalid value"),
    (["create", "--bundle"], "flag needs an argument"),
    (["run", "--detach=maybe", "x"], "invalid boolean"),
])
def test_errors(argv, message):
    with pytest.raises(RuntimeFailure, match=message):
        parse(argv)


def test_help_for_every_command():
    assert "create" in usage() and "--root" in usage()
    for name in COMMANDS:
        assert f"pyrunc {name}" in usage(name)
    assert parse(["create", "--help"]).help is True


@pytest.mark.parametrize("argv", [["--log", "/l", "--log-format=json", "bogus"],
                                  ["--log=/l", "--log-format", "json", "kill", "--bogus", "x"],
                                  ["--log", "/l", "--log-format", "json", "state"]])
def test_command_line_errors_carry_the_global_flags(argv):
    """A bad command after good global flags is still reported to --log (as runc does)."""
    with pytest.raises(RuntimeFailure) as failure:
        parse(argv)
    given = failure.value.global_args  # type: ignore[attr-defined]
    assert (given.log, given.log_format) == ("/l", "json")
