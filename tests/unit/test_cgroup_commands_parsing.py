"""Parsers behind `update` and `events`: sizes, durations, merging, and the v2 stat files
(sample text as the kernel writes it; the integration tests read live cgroups)."""

from __future__ import annotations

import os

import pytest

from ociruntime.cgroups.manager import CgroupManager
from ociruntime.cgroups.stats import NO_LIMIT, collect
from ociruntime.cgroups.update import merge, parse_ram, resources_from_flags
from ociruntime.cli.parser import parse
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
    assert data["memory"]["swap"] == {"limit": NO_LIMIT, "usage": 4096, "failcnt": 0}
    assert data["memory"]["kernel"] == data["memory"]["kernelTCP"] == {"limit": 0, "failcnt": 0}
    assert data["cpuset"] == {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0,
                              "memory_migrate": 0, "memory_spread_page": 0,
                              "memory_spread_slab": 0, "memory_pressure": 0,
                              "sched_load_balance": 0, "sched_relax_domain_level": 0}


def test_v2_swap_limit_is_memory_plus_swap(tmp_path):
    """runc reports v2's swap like v1's memsw: swap.max + memory.max, unless either is max."""
    (tmp_path / "cgroup.controllers").write_text("memory\n")
    for name, text in {"memory.current": "100\n", "memory.max": "1000\n",
                       "memory.swap.current": "50\n", "memory.swap.max": "500\n"}.items():
        (tmp_path / name).write_text(text)
    memory = collect(CgroupManager({"": str(tmp_path)}), 1)["memory"]
    assert memory["usage"] == {"limit": 1000, "usage": 100, "failcnt": 0}
    assert memory["swap"] == {"limit": 1500, "usage": 150, "failcnt": 0}
    assert "raw" not in memory and "cache" not in memory, "omitempty, as in Go"


def test_v1_blkio_takes_the_first_file_set_with_entries(tmp_path):
    """BFQ files when they have entries (with the 2-field sectors lines), else throttle."""
    blkio = tmp_path / "blkio"
    blkio.mkdir()
    (blkio / "blkio.bfq.io_service_bytes_recursive").write_text("Total 0\n")
    (blkio / "blkio.throttle.io_serviced_recursive").write_text(
        "8:0 Read 3\n8:0 Write 0\nTotal 3\n")
    (blkio / "blkio.throttle.io_service_bytes_recursive").write_text(
        "8:0 Read 12288\n8:0 Write 0\nTotal 12288\n")
    manager = CgroupManager({"blkio": str(blkio)})
    assert collect(manager, 1)["blkio"] == {
        "ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 12288},
                                    {"major": 8, "op": "Write"}],
        "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 3},
                                {"major": 8, "op": "Write"}]}
    for name, text in {"sectors_recursive": "8:16 24\n",
                       "io_service_bytes_recursive": "8:16 Read 4096\nTotal 4096\n",
                       "io_serviced_recursive": "8:16 Read 1\nTotal 1\n"}.items():
        (blkio / f"blkio.bfq.{name}").write_text(text)
    data = collect(manager, 1)["blkio"]
    assert data["sectorsRecursive"] == [{"major": 8, "minor": 16, "value": 24}]
    assert data["ioServiceBytesRecursive"] == [{"major": 8, "minor": 16, "op": "Read",
                                                "value": 4096}]


def test_no_pids_controller_counts_cgroup_procs(tmp_path):
    (tmp_path / "cgroup.procs").write_text("10\n11\n12\n")
    assert collect(CgroupManager({"": str(tmp_path)}), 1)["pids"] == {"current": 3}


def test_network_interfaces_use_go_field_names():
    """runc's NetworkInterface has no JSON tags: go-runc reads Name, RxBytes, ..."""
    interfaces = collect(CgroupManager({}), os.getpid())["network_interfaces"]
    assert interfaces and "lo" in [i["Name"] for i in interfaces]
    assert list(interfaces[0]) == ["Name", "RxBytes", "RxPackets", "RxErrors", "RxDropped",
                                   "TxBytes", "TxPackets", "TxErrors", "TxDropped"]


def test_zero_values_leave_limits_unchanged_like_runc():
    stored = {"memory": {"limit": 64 << 20, "swap": 128 << 20}, "pids": {"limit": 10},
              "cpu": {"shares": 512, "cpus": "0-1"}}
    update = {"memory": {"limit": 0, "swap": 0, "swappiness": 0}, "pids": {"limit": 0},
              "cpu": {"shares": 0, "cpus": "", "quota": -1}, "blockIO": {"weight": 0}}
    merged = merge(stored, update)
    assert merged["memory"] == {"limit": 64 << 20, "swap": 128 << 20, "swappiness": 0}
    assert merged["pids"] == {"limit": 10}
    assert merged["cpu"] == {"shares": 512, "cpus": "0-1", "quota": -1}
    assert merged["blockIO"] == {}
    assert merge(stored, {"pids": {"limit": -1}})["pids"] == {"limit": -1}, "-1: no limit"


def test_update_flags_as_runc_spells_them():
    args = parse(["update", "--cpu-share", "10", "--cpu-shares=20", "--kernel-memory", "1m",
                  "-r", "-", "ctr"])
    assert args.cpu_share == "20" and args.kernel_memory == "1m" and args.resources == "-"
    flags = resources_from_flags({"kernel_memory": "1m", "kernel_memory_tcp": "2k"})
    assert flags == {"memory": {"kernel": 1 << 20, "kernelTCP": 2 << 10}}
    args = parse(["events", "--interval=5s", "ctr"])  # go-runc's spelling
    assert args.interval == "5s" and not args.stats
