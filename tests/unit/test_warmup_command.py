"""The launcher's early warm-up reads the command word without the CLI parser."""

from __future__ import annotations

from ociruntime.cgroups.warmup import MIGRATING, VALUED_GLOBAL_FLAGS, command_word
from ociruntime.cli.parser import BOOL, COMMANDS, GLOBAL_FLAGS


def test_valued_global_flags_match_the_parser() -> None:
    valued = {name for f in GLOBAL_FLAGS if f.kind != BOOL for name in f.names}
    assert valued == VALUED_GLOBAL_FLAGS


def test_migrating_commands_exist() -> None:
    assert MIGRATING <= set(COMMANDS)


def test_command_word_skips_global_flags_and_their_values() -> None:
    assert command_word(["--root", "/run/x", "--log", "exec", "--log-format=json", "--debug",
                         "exec", "c1", "true"]) == "exec"
    assert command_word(["--systemd-cgroup", "run", "-b", "b", "c1"]) == "run"
    assert command_word(["state", "run"]) == "state"  # a container named run
    assert command_word(["--version"]) is None
    assert command_word([]) is None
