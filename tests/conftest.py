"""Shared test configuration: privileged tests need root; CI makes a missing root a failure."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

REQUIRE_PRIVILEGED = os.environ.get("PYRUNC_REQUIRE_PRIVILEGED") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip privileged tests without root, or fail them when CI demands they run."""
    if os.geteuid() == 0:
        return
    for item in items:
        if item.get_closest_marker("privileged"):
            if REQUIRE_PRIVILEGED:
                item.add_marker(pytest.mark.usefixtures("_privileged_required"))
            else:
                item.add_marker(pytest.mark.skip(reason="needs root"))


@pytest.fixture
def _privileged_required() -> None:
    pytest.fail("privileged test cannot run: not root (PYRUNC_REQUIRE_PRIVILEGED=1)")
