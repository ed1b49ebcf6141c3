"""Parsers behind `update` and `events`: sizes, durations, merging, and the v2 stat files
(sample text as the kernel writes it; the integration tests read live cgroups)."""

from __future__ import annotations

import pytest

from ociruntime.cgroups.manager import CgroupManager
from ociruntime.cgroups.stats import NO_LIMIT, collect
from ociruntime.cgroups.update import merge, parse_ram, resources_from_flags
from ociruntime.errors import RuntimeFailure
from ociruntime.events import parse_duration


@pytest.mark.parametrize("text,value", [("1024", 1024), ("512k", 512 << 10), ("100m", 100 << 20),
                                        ("100M", 100 << 20), ("2GiB", 2 << 30), ("3mb", 3 << 20),
                                        ("1.5g", 3 << 29), ("-1", -1), ("10b", 10)])
def test_sizes_like_runc(text, value):
    assert parse_ram(text, "memory") == value


@pytest.mark.parametrize("text", ["abc", "", "1x", "m", "-5", "1kk"])
def test_bad_sizes_name_the_flag(text):
    with pytest.raises(RuntimeFailure, match=f"invalid value for memory: invalid size: '{text}'"):
        parse_ram(text, "memory")


@pytest.mark.parametrize("text,seconds", [("5s", 5), ("100ms", 0.1), ("1m30s", 90),
                                          ("1.5h", 5400), ("250us", 0.00025)])
def test_go_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "5x", "0s"])
def test_bad_durations(text):
    with pytest.raises(RuntimeFailure):
        parse_duration(text)


def test_flags_and_merge_keep_what_an_update_does_not_name():
    update = resources_from_flags({"memory": "64m", "pids_limit": "20", "cpu_share": None,
                                   "cpuset_cpus": "0"})
    assert update == {"memory": {"limit": 64 << 20}, "pids": {"limit": 20},
                      "cpu": {"cpus": "0"}}
    stored = {"memory": {"limit": 1 << 30, "swap": 2 << 30}, "devices": [{"allow": False}]}
    merged = merge(stored, update)
    assert merged["memory"] == {"limit": 64 << 20, "swap": 2 << 30}
    assert merged["devices"] == [{"allow": False}]
    assert stored["memory"]["limit"] == 1 << 30, "the stored resources are not changed in place"


def test_v2_stat_files(tmp_path):
    parent = tmp_path / "parent"
    leaf = parent / "leaf"
    leaf.mkdir(parents=True)
    (parent / "cgroup.subtree_control").write_text("cpu io memory pids\n")
    files = {
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\n"
                    "nr_throttled 1\nthrottled_usec 20\n",
        "memory.current": "4096\n", "memory.max": "max\n", "memory.stat": "anon 4096\nfile 8192\n",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        "memory.swap.current": "0\n", "memory.swap.max": "max\n",
        "pids.current": "2\n", "pids.max": "max\n",
        "io.stat": "8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
    }
    for name, text in files.items():
        (leaf / name).write_text(text)
    data = collect(CgroupManager({"": str(leaf)}), 1)
    assert data["cpu"]["usage"] == {"total": 1_500_000, "kernel": 500_000, "user": 1_000_000}
    assert data["cpu"]["throttling"] == {"periods": 4, "throttledPeriods": 1,
                                         "throttledTime": 20_000}
    assert data["memory"]["usage"] == {"limit": NO_LIMIT, "usage": 4096, "failcnt": 3}
    assert data["memory"]["cache"] == 8192
    assert data["pids"] == {"current": 2}
    assert data["blkio"]["ioServiceBytesRecursive"] == [
        {"major": 8, "op": "Read", "value": 4096}, {"major": 8, "op": "Write"}]
