"""The installed launcher (.venv/bin/pyrunc, from bin/pyrunc): it finds the package through the
PACKAGE_ROOT .ci/setup writes into it, and without one (or with a stale one) through
site-packages and its .pth files, as a plain `pip install` leaves it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALLED = Path(sys.executable).parent / "pyrunc"

PROBE = "import ociruntime, sys; print(ociruntime.__file__); print(repr(sys.path))"


def launcher_with_root(tmp_path: Path, root: str) -> Path:
    """A copy of the installed launcher with PACKAGE_ROOT set to `root`, whose main() is
    replaced by printing where ociruntime came from and sys.path."""
    text = INSTALLED.read_text()
    text, count = re.subn(r'(?m)^PACKAGE_ROOT = .*$', f"PACKAGE_ROOT = {root!r}", text)
    assert count == 1
    text = re.sub(r"(?m)^main\(\)$", f"exec({PROBE!r})", text)
    path = tmp_path / "pyrunc"
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture(autouse=True)
def _installed() -> None:
    if not INSTALLED.exists():
        pytest.fail(f"{INSTALLED} is missing: run .ci/setup")


def test_setup_wrote_the_checkout_into_the_launcher():
    assert f"PACKAGE_ROOT = {str(REPO)!r}" in INSTALLED.read_text().splitlines()
    assert INSTALLED.read_text().startswith(f"#!{REPO}/.venv/bin/python -IS\n")


@pytest.mark.parametrize("root", ["checkout", "", "/nonexistent"],
                         ids=["package-root", "unset", "stale"])
def test_the_package_is_found(tmp_path, root):
    launcher = launcher_with_root(tmp_path, str(REPO) if root == "checkout" else root)
    out = subprocess.run([str(launcher)], capture_output=True, text=True, check=True).stdout
    module_file, path = out.splitlines()
    assert Path(module_file).resolve() == REPO / "ociruntime" / "__init__.py"
    entries = ast.literal_eval(path)
    site_packages = [p for p in entries if p.endswith("site-packages")]
    assert site_packages, "site-packages must stay importable (jsonschema, for errors)"
    if root == "checkout":  # the package before site-packages: that is never listed for it
        assert entries.index(str(REPO)) < entries.index(site_packages[0])


def test_the_launcher_runs_a_command():
    out = subprocess.run([str(INSTALLED), "--version"], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("pyrunc version ")
