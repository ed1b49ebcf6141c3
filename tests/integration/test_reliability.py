"""Crashes mid-create, corrupt state, and races on one ID: always coherent, always cleanable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.privileged

PHASES = ["claimed", "planned", "cgroups", "spawned", "placement", "bootstrap", "init", "mounts",
          "ready", "recorded"]


@pytest.mark.parametrize("point", PHASES)
def test_sigkill_during_create_then_delete_force(pyrunc, make_bundle, cid, point):
    bundle = make_bundle(["sleep", "30"])
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([*pyrunc.argv, "--root", str(pyrunc.root), "create", "-b",
                                 str(bundle), cid], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err,
                                env=dict(os.environ, PYRUNC_TEST_PAUSE=point))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            err.seek(0)
            if b"paused at" in err.read():
                break
            time.sleep(0.02)
        else:
            proc.kill()
            proc.wait()
            pytest.fail(f"create never reached {point}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = pyrunc.run("state", cid)
    if point == "claimed":
        assert "does not exist" in state.stderr
    else:
        doc = json.loads(state.stdout)
        assert doc["status"] in ("stopped", "created"), doc
    listed = pyrunc.run("list", "-f", "json")
    assert listed.returncode == 0
    json.loads(listed.stdout)
    assert pyrunc.run("delete", "--force", cid).returncode == 0
    assert not (pyrunc.root / cid).exists()


def test_corrupt_state_is_reported_and_force_deletable(pyrunc, make_bundle, cid):
    pyrunc.run("run", "-d", "-b", str(make_bundle(["sleep", "30"])), cid, check=True)
    pid = pyrunc.state(cid)["pid"]
    state_file = pyrunc.root / cid / "state.json"
    good = state_file.read_text()
    state_file.write_text(good[: len(good) // 2])
    proc = pyrunc.run("state", cid)
    assert proc.returncode == 1
    assert "unreadable" in proc.stderr or "corrupt" in proc.stderr
    state_file.write_text(good)  # so the leak check can stop the container by its state
    pyrunc.run("delete", "--force", cid, check=True)
    time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}/cmdline") or \
        open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"


def test_reused_pid_is_not_taken_for_the_container(pyrunc, make_bundle, cid):
    pyrunc.run("create", "-b", str(make_bundle(["true"])), cid, check=True)
    state_file = pyrunc.root / cid / "state.json"
    doc = json.loads(state_file.read_text())
    real_pid = doc["pid"]
    doc["pid"] = os.getpid()  # alive, but not the process that was recorded
    state_file.write_text(json.dumps(doc))
    assert pyrunc.state(cid)["status"] == "stopped"
    doc["pid"] = real_pid
    state_file.write_text(json.dumps(doc))
    pyrunc.run("delete", "--force", cid, check=True)


def test_concurrent_creates_of_one_id_have_one_winner(pyrunc, make_bundle, cid):
    bundle = make_bundle(["sleep", "30"])

    def create(_: int) -> int:
        return pyrunc.run("create", "-b", str(bundle), cid).returncode

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(create, range(8)))
    assert codes.count(0) == 1, codes
    assert pyrunc.state(cid)["status"] == "created"
    pyrunc.run("delete", "--force", cid, check=True)


def test_missing_start_socket_is_detected(pyrunc, make_bundle, cid):
    pyrunc.run("create", "-b", str(make_bundle(["sleep", "30"])), cid, check=True)
    (pyrunc.root / cid / "exec.sock").unlink()
    assert pyrunc.state(cid)["status"] == "created", "the init still waits: still created"
    proc = pyrunc.run("start", cid)
    assert proc.returncode == 1
    assert "start socket" in proc.stderr and "missing" in proc.stderr
    pyrunc.run("delete", "--force", cid, check=True)
    assert not (pyrunc.root / cid).exists()


def test_annotations_reach_state(pyrunc, make_bundle, cid):
    def annotate(c):
        c["annotations"] = {"org.example/owner": "tests"}
    pyrunc.run("create", "-b", str(make_bundle(["true"], annotate)), cid, check=True)
    assert pyrunc.state(cid)["annotations"] == {"org.example/owner": "tests"}
