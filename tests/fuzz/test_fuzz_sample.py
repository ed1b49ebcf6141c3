"""A CI-sized sample of the fuzz script (the full run is tests/fuzz/fuzz_configs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.fuzz_configs import run_argv, run_configs
from tests.integration import leaks

pytestmark = pytest.mark.privileged


def test_hostile_configs_fail_cleanly(tmp_path: Path):
    before = leaks.Snapshot()
    count, failures = run_configs(150, seed=7, work=tmp_path)
    assert count == 150
    assert failures == []
    assert leaks.diff(before, [tmp_path / "root"]) == []


def test_hostile_argument_lists_fail_cleanly(tmp_path: Path):
    (tmp_path / "bundle").mkdir()
    count, failures = run_argv(150, seed=7, work=tmp_path)
    assert count == 150
    assert failures == []
