"""The static probe (probe.c) that tests copy into a container's rootfs."""

from __future__ import annotations

import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("probe.c")


def build(dest_dir: Path) -> Path:
    """Compile probe.c statically into dest_dir (gcc and libc6-dev come with .ci/setup)."""
    out = dest_dir / "probe"
    done = subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(SOURCE), "-lpthread"],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"cannot build the test probe: {done.stderr}"
    return out
