"""Symlink-exchange races on mount destinations (CVE-2021-30465, CVE-2024-45310 classes), run
as the attacks were: a container sharing a volume with the next container exchanges a
directory and a symlink to a host path in that volume (renameat2 RENAME_EXCHANGE, the
exploits' primitive, via the probe), as fast as it can, while the runtime creates the next
container's mount destinations below that name and mounts onto them.
A runtime that resolves a path and then uses the path string (mkdir -p, mount) can be raced
into following the symlink on the host; resolving every step inside the root and working on
the fds cannot be.

What the host can see afterwards is the verdict: the symlink points at an empty directory of
the host (`outside`); a mkdir that followed it on the host would create the destination
there. A victim either starts or fails on a raced destination (the name moved under it);
none may leave anything in `outside`. Checked against a copy of pyrunc whose mkdir goes by
path string (os.makedirs on rootfs + destination): it fails in the first rounds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.integration.probe import build as build_probe

pytestmark = pytest.mark.privileged

ROUNDS = 12
MOUNTS = 10  # destinations below the raced name, per victim


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_probe(tmp_path_factory.mktemp("probe"))


def swaps(rt, cid: str) -> int:
    """How many exchanges the attacker has made so far (it writes every 1000th)."""
    done = rt.run("exec", cid, "sh", "-c", "cat /dev/swaps 2>/dev/null || echo 0")
    assert done.returncode == 0, f"the attacker is gone: {done.stderr}"
    return int(done.stdout)


def test_mount_destination_swapped_during_create(pyrunc, make_bundle, probe, cid, tmp_path):
    """pyrunc only: runc 1.1.5 predates the fix for CVE-2024-45310 (1.1.14); run with it,
    this test saw runc create `outside/m5` on the host through the swapped symlink."""
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "d").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), volume / "l")

    def share(c):
        c["mounts"].append({"destination": "/v", "type": "bind", "source": str(volume),
                            "options": ["rbind", "rw"]})
    attacker = make_bundle(["/probe", "exchange", "/v/d", "/v/l", "/dev/swaps"], share)
    shutil.copy(probe, attacker / "rootfs" / "probe")
    pyrunc.run("run", "-d", "-b", str(attacker), cid, check=True)

    def victim(c):
        share(c)
        c["mounts"] += [{"destination": f"/v/d/m{i}", "type": "tmpfs", "source": "tmpfs",
                         "options": ["size=1236k"]} for i in range(MOUNTS)]
    before = swaps(pyrunc, cid)
    for i in range(ROUNDS):
        bundle = make_bundle(["true"], victim)
        proc = pyrunc.run("run", "-b", str(bundle), f"{cid}v{i}")
        pyrunc.run("delete", "-f", f"{cid}v{i}")
        assert list(outside.iterdir()) == [], f"created on the host through the symlink " \
                                              f"(round {i}): {proc.stderr}"
        # a victim either got all its mounts or lost the race on one of them: the name moved
        # under the runtime (never anything else, which would mean the race was not run)
        assert proc.returncode == 0 or "v/d" in proc.stderr, proc.stderr
    assert swaps(pyrunc, cid) > before + 1000, "the attacker was swapping all along"
