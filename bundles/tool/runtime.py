"""The OCI runtime that runs the bundles: pyrunc (or runc: same command line), as a
subprocess with its own state root (ROOT/run).

The binary is $PYRUNC_BUNDLE_RUNTIME, else the `pyrunc` next to this Python (the venv's),
else `pyrunc` on PATH. Its errors are read from a JSON --log file per container.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

RUNTIME_ENV = "PYRUNC_BUNDLE_RUNTIME"


def default_binary() -> str:
    """The runtime to use (see the module docstring)."""
    if os.environ.get(RUNTIME_ENV):
        return os.environ[RUNTIME_ENV]
    beside = Path(sys.executable).parent / "pyrunc"
    if beside.exists():
        return str(beside)
    found = shutil.which("pyrunc")
    if not found:
        raise RuntimeFailure(f"no pyrunc found (next to {sys.executable} or on PATH); "
                             f"set {RUNTIME_ENV}")
    return found


def _last_error(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    for line in reversed(lines):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("level") == "error":
            return str(doc.get("msg", ""))
    return ""


class Runtime:
    """`<runtime> --root ROOT/run --log BUNDLE/runtime.log --log-format json ...`."""

    def __init__(self, state_root: Path, binary: str | None = None) -> None:
        self.state_root = state_root
        self.binary = binary or default_binary()

    def _argv(self, bundle: Path, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.state_root), "--log",
                str(bundle / "runtime.log"), "--log-format", "json", *args]

    def call(self, bundle: Path, *args: str, check: bool = True, **kw: Any
             ) -> subprocess.CompletedProcess[bytes]:
        """Run one runtime command; RuntimeFailure with its error line when it fails."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        done = subprocess.run(self._argv(bundle, *args), stdin=subprocess.DEVNULL,
                              timeout=60, check=False, **kw)
        if check and done.returncode != 0:
            why = _last_error(bundle / "runtime.log") or (done.stderr or b"").decode(
                errors="replace").strip() or f"exit status {done.returncode}"
            raise RuntimeFailure(f"{os.path.basename(self.binary)} {args[0]} {args[-1]}: {why}")
        return done

    def state(self, bundle: Path, name: str) -> dict[str, Any] | None:
        """The runtime's state of the container, None when it has none."""
        if not (self.state_root / name).exists():
            return None
        done = self.call(bundle, "state", name, check=False)
        if done.returncode != 0:
            return None
        return json.loads(done.stdout)

    def status(self, bundle: Path, name: str) -> str:
        """running / paused / created / stopped, or `exited` when the runtime forgot it."""
        state = self.state(bundle, name)
        return state["status"] if state else "exited"

    def run_detached(self, bundle: Path, name: str, log: Path) -> None:
        """`run -d`: the container's stdout and stderr append to `log`, stdin is /dev/null."""
        with open(log, "ab") as out:
            self.call(bundle, "run", "-d", "-b", str(bundle), name, stdout=out, stderr=out)

    def wait_stopped(self, bundle: Path, name: str, seconds: float) -> bool:
        """Poll until the container is stopped (or gone); False on timeout."""
        deadline = time.monotonic() + seconds
        while True:
            if self.status(bundle, name) in ("stopped", "exited"):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
