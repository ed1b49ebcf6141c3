"""The runtime-tools runner's TAP reading and verdicts, on output the validation programs print."""

from __future__ import annotations

import json

from conformance import tap
from conformance.runtime_tools import Result, compare, load_skip_list, verdict, write_reports

# hostname.t: runtimetest's own TAP nested as a YAML block; its `not ok` must not count
NESTED = """TAP version 13
  ---
  {
    "stderr": "",
    "stdout": "TAP version 13\\nnot ok 1 - inner failure\\nok 2 # SKIP hostname not set\\n1..2\\n"
  }
  ...
ok 1 - hostname is set correctly
ok 2 - check hostname "hostname-specific"
ok 3 - check hostname "hostname-specific"
ok 4 - hostname is set correctly
1..4
"""

# delete.t against runc 1.1.5
DELETE = """TAP version 13
ok 1 - attempting to `delete` a container that does not exist MUST generate an error
  ---
  {
    "reference": "https://github.com/opencontainers/runtime-spec/blob/v1.1.0/runtime.md#delete"
  }
  ...
not ok 2 - attempting to `delete` a container that is not `stopped` MUST generate an error
  ---
  {
    "reference": "https://github.com/opencontainers/runtime-spec/blob/v1.1.0/runtime.md#delete"
  }
  ...
1..2
"""

# linux_cgroups_cpus.t: two Header()/AutoPlan() sub-tests, the second with no points
TWO_STREAMS = """TAP version 13
ok 1 - find cpu cgroup
ok 2 - cpu shares is set correctly
# expect: 2048, actual: 2048
1..2
TAP version 13
1..0
"""

# prestart.t against runc 1.1.5: a failed check is an error block and `1..0`, no `not ok`
PRESTART = """TAP version 13
  ---
  {
    "error": "Pre-start hooks MUST be called after the `start` operation is called\\nRefer to: https://github.com/opencontainers/runtime-spec/blob/v1.1.0/config.md#prestart"
  }
  ...
1..0
"""

SKIPPED = """TAP version 13
1..1
ok 1 # SKIP POSIX-specific process.rlimits test
"""


def test_nested_yaml_tap_is_not_read_as_results():
    stream = tap.parse(NESTED)
    assert stream.planned == 4
    assert [p.number for p in stream.points] == [1, 2, 3, 4]
    assert stream.failures == [] and stream.plan_ok
    assert verdict(NESTED, "", 0) == ("pass", "")


def test_first_failing_line_is_reported():
    assert verdict(DELETE, "", 0) == (
        "fail", "not ok 2 - attempting to `delete` a container that is not `stopped` MUST "
                "generate an error")


def test_one_stream_per_subtest_and_empty_plan():
    streams = tap.parse_all(TWO_STREAMS)
    assert [(s.planned, len(s.points)) for s in streams] == [(2, 2), (0, 0)]
    assert verdict(TWO_STREAMS, "", 0) == ("pass", "")


def test_lifecycle_program_error_block_fails_and_silent_empty_plan_passes():
    stream = tap.parse(PRESTART)
    assert stream.planned == 0 and stream.points == []
    assert stream.orphan_errors[0].startswith("Pre-start hooks MUST be called after")
    assert verdict(PRESTART, "", 0) == (
        "fail", "error: Pre-start hooks MUST be called after the `start` operation is called")
    # poststop.t when every check held: nothing but the empty plan, exit status 0
    assert verdict("TAP version 13\n1..0\n", "", 0) == ("pass", "")
    # an error block after a test point belongs to that point (hooks_stdin's "error": "")
    assert verdict('TAP version 13\nok 1 - x\n  ---\n  {"error": "late"}\n  ...\n1..1\n',
                   "", 0) == ("pass", "")


def test_skip_directive_and_counts():
    stream = tap.parse(SKIPPED)
    assert stream.points[0].skipped and stream.all_skipped
    assert verdict(SKIPPED, "", 0) == ("skip", "SKIP POSIX-specific process.rlimits test")


def test_runtime_error_names_its_message_not_the_generic_lines():
    stderr = ("failed to create the container\n"
              'time="2026-11-22T21:36:40Z" level=error msg="runc create failed: cannot set '
              'hugetlb limit"\nexit status 1\n')
    kind, reason = verdict("TAP version 13\n1..0\n", stderr, 1)
    assert kind == "fail"
    assert reason.startswith("exit status 1: time=") and "cannot set hugetlb limit" in reason
    kind, reason = verdict("", "failed to create the container\npyrunc: capset: EPERM\n", 1)
    assert (kind, reason) == ("fail", "exit status 1: pyrunc: capset: EPERM")


def test_silent_exit_zero_is_the_fail_programs_pass_and_plan_mismatch_fails():
    assert verdict("", "failed to create the container\n", 0)[0] == "pass"
    assert verdict("TAP version 13\nok 1 - a\n1..2\n", "", 0) == (
        "fail", "plan 1..2 but 1 test points")
    assert verdict("TAP version 13\nok 1 - a\nBail out! no rootfs\n", "", 0) == (
        "fail", "Bail out! no rootfs")


def test_reports_summary_tap_and_comparison(tmp_path):
    a, b = tmp_path / "runc", tmp_path / "pyrunc"
    a.mkdir()
    b.mkdir()
    summary = write_reports([Result("create", "pass", seconds=1.0),
                             Result("delete", "fail", "not ok 2 - x", 2.0, 0),
                             Result("misc_props", "skip", "upstream bug")], a, "/usr/sbin/runc")
    assert summary == "1 passed, 1 failed, 1 skipped"
    lines = (a / "summary.tap").read_text().splitlines()
    assert lines[:3] == ["TAP version 13", "1..3", "ok 1 - create"]
    assert "not ok 2 - delete" in lines and "ok 3 - misc_props # SKIP upstream bug" in lines
    assert lines[-1] == "# 1 passed, 1 failed, 1 skipped"
    # the runner's own summary is valid TAP for our reader
    assert [p.ok for p in tap.parse((a / "summary.tap").read_text()).points] == [
        True, False, True]
    assert "FAIL delete (2 s): not ok 2 - x" in (a / "report.txt").read_text()
    assert json.loads((a / "results.json").read_text())["summary"] == summary
    write_reports([Result("create", "pass"), Result("delete", "pass"),
                   Result("misc_props", "skip", "upstream bug")], b, "/x/pyrunc")
    table = compare(a, b)
    assert "| delete | fail | pass | **differs** |" in table
    assert "| create | pass | pass |  |" in table


def test_skip_list_has_a_reason_for_each_entry():
    skips = load_skip_list()
    assert skips and all(len(reason) > 20 for reason in skips.values())
