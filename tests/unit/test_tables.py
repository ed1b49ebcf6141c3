"""Mount options, signals, JSON I/O, records, list table, ID validation, cgroup paths."""

from __future__ import annotations

import json

import pytest

from ociruntime.cgroups.layout import discover
from ociruntime.cgroups.manager import resolve_relative_path
from ociruntime.cli.table import render_list
from ociruntime.config.known import parse_signal
from ociruntime.config.mount_options import (
    RECURSIVE_OPTIONS,
    known_mount_options,
    parse_mount_options,
)
from ociruntime.errors import RuntimeFailure
from ociruntime.jsonio import dumps, dumps_pretty, loads
from ociruntime.linux import syscalls as sc
from ociruntime.linux.process_attrs import parse_cpu_list
from ociruntime.record import record
from ociruntime.state import validate_id


def test_flag_options_set_and_clear():
    p = parse_mount_options(["nosuid", "nodev", "ro", "rw", "noexec", "exec", "mode=755"])
    assert p.flags & sc.MS_NOSUID and p.flags & sc.MS_NODEV
    assert not p.flags & sc.MS_RDONLY and p.cleared & sc.MS_RDONLY
    assert not p.flags & sc.MS_NOEXEC
    assert p.data_string == "mode=755"


def test_bind_propagation_and_recursive_options():
    p = parse_mount_options(["rbind", "rprivate", "rro", "rnosuid"])
    assert p.is_bind and p.flags & sc.MS_REC
    assert p.propagation == [sc.MS_PRIVATE | sc.MS_REC]
    assert p.rec_set == RECURSIVE_OPTIONS["rro"][0] | RECURSIVE_OPTIONS["rnosuid"][0]
    atime = parse_mount_options(["rnoatime"])
    assert atime.rec_clear == 0x70 and atime.rec_set == 0x10


def test_every_known_option_parses_and_nothing_known_becomes_data():
    for option in known_mount_options():
        assert not parse_mount_options([option]).data, option
    assert parse_mount_options(["size=1m"]).data == ["size=1m"]


@pytest.mark.parametrize("text,number", [("9", 9), ("KILL", 9), ("SIGKILL", 9), ("sigterm", 15),
                                         ("TERM", 15), ("USR1", 10), ("RTMIN+2", 36),
                                         ("SIGRTMAX", 64), ("WINCH", 28)])
def test_signals(text, number):
    assert parse_signal(text) == number


@pytest.mark.parametrize("bad", ["NOPE", "0", "65", "RTMIN+99", ""])
def test_bad_signals(bad):
    with pytest.raises(ValueError):
        parse_signal(bad)


def test_jsonio_matches_json():
    doc = {"a": [1, 2.5, None, True, "é\u2028"], "b": {}, "c": [], "d": {"e": "x\"y"}}
    assert loads(json.dumps(doc)) == doc
    assert dumps(doc) == json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    assert dumps_pretty(doc) == json.dumps(doc, indent=2, ensure_ascii=False)
    for bad in ["", "{", "[1,]", "{} x", "nul"]:
        with pytest.raises(ValueError):
            loads(bad)


def test_record_defaults_are_not_shared():
    @record
    class Point:
        x: int
        tags: list = []

    a, b = Point(1), Point(2, tags=["t"])
    a.tags.append("mine")
    assert Point(3).tags == [] and b.tags == ["t"] and a == Point(1, ["mine"])
    with pytest.raises(TypeError):
        Point()
    with pytest.raises(TypeError):
        Point(1, nope=2)


def test_list_table_layout():
    rows = [{"id": "abc", "pid": 12, "status": "running", "bundle": "/b", "created": "t",
             "owner": "root"}]
    out = render_list(rows).splitlines()
    assert out[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert out[1].startswith("abc" + " " * 9) and out[1].endswith("root")


@pytest.mark.parametrize("good", ["a", "abc-1_2.3+x", "A" * 100])
def test_good_ids(good):
    validate_id(good)


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "../x", "a b", "é", "x" * 2000, "a\0b"])
def test_bad_ids(bad):
    with pytest.raises(RuntimeFailure):
        validate_id(bad)


def test_cgroup_paths():
    assert resolve_relative_path(None, "c1") == "/pyrunc/c1"
    assert resolve_relative_path("/a/../b/c", "x") == "/b/c"
    assert resolve_relative_path("rel/path", "x") is None
    keys = {h.key for h in discover()}
    assert keys, "this machine mounts cgroups"


def test_cpu_lists():
    assert parse_cpu_list("0-2,5") == {0, 1, 2, 5}
    assert parse_cpu_list("") == set()
    with pytest.raises(ValueError):
        parse_cpu_list("3-1")


def test_v1_v2_conversions():
    from ociruntime.cgroups.resources import blkio_weight_to_io_weight, shares_to_weight

    assert shares_to_weight(2) == 1 and shares_to_weight(262144) == 10000
    assert shares_to_weight(1024) == 39
    assert blkio_weight_to_io_weight(10) == 1 and blkio_weight_to_io_weight(1000) == 10000


def test_device_rule_lines_and_program():
    from ociruntime.cgroups.devices import assemble, effective_rules, rule_line

    assert rule_line({"allow": False, "access": "rwm"}) == "a"
    assert rule_line({"allow": True, "type": "c", "major": 1, "minor": 3}) == "c 1:3 rwm"
    assert rule_line({"allow": True, "type": "b", "access": "m"}) == "b *:* m"
    program = assemble(effective_rules([{"allow": False, "access": "rwm"}]))
    assert len(program) % 8 == 0
    assert program[-8:] == bytes([0x95, 0, 0, 0, 0, 0, 0, 0]), "ends with exit"
