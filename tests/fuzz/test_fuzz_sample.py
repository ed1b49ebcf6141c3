"""A CI-sized sample of the fuzz script (the full run is tests/fuzz/fuzz_configs.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundles.busybox import cached_rootfs
from ociruntime.config.defaults import default_spec
from tests.fuzz.fuzz_configs import PYRUNC, run_argv, run_configs
from tests.helpers import json_paths, set_at
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


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                      st.text(max_size=20), st.sampled_from(["..", "/..", "CAP_X", "\x00"]))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)


@pytest.fixture(scope="module")
def fuzz_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = tmp_path_factory.mktemp("hyp-bundle")
    shutil.copytree(cached_rootfs(), bundle / "rootfs", symlinks=True)
    return bundle


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hypothesis_configs_fail_cleanly(fuzz_bundle: Path, data: st.DataObject):
    """Property: whatever a config holds, create succeeds or fails with one clean line."""
    doc = default_spec(terminal=False)
    doc["process"]["args"] = ["/bin/true"]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(json_paths(doc)[1:]))
        set_at(doc, path, data.draw(json_value))
    try:
        (fuzz_bundle / "config.json").write_text(json.dumps(doc))
    except ValueError:
        return
    root = fuzz_bundle / "root"
    # output through files, not pipes: a container that starts would hold a pipe open
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run([PYRUNC, "--root", str(root), "run", "-b", str(fuzz_bundle),
                               "hyp"], stdout=subprocess.DEVNULL, stderr=err,
                              stdin=subprocess.DEVNULL, timeout=30)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if proc.returncode == 0:
        assert not (root / "hyp").exists(), "run deletes its container"
        return
    assert "Traceback" not in stderr
    assert proc.returncode == 1, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert not (root / "hyp").exists()
