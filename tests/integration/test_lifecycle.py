"""The runtime-spec lifecycle through the CLI, run against pyrunc and (as oracle) runc."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from tests.integration import cgroupfs

pytestmark = pytest.mark.privileged
SPEC = Path(__file__).resolve().parents[2] / "spec"

SLEEPER = ["sleep", "300"]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def wait_status(runtime, cid: str, status: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        proc = runtime.run("state", cid)
        state = json.loads(proc.stdout) if proc.returncode == 0 else {"status": "absent"}
        if state["status"] == status or time.monotonic() > deadline:
            return state
        time.sleep(0.02)


def test_create_start_kill_delete(runtime, make_bundle, cid, tmp_path):
    bundle = make_bundle(SLEEPER)
    pid_file = tmp_path / "init.pid"
    runtime.run("create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid, check=True)
    state = runtime.state(cid)
    assert state["status"] == "created"
    assert state["id"] == cid
    assert state["pid"] > 0
    assert state["bundle"] == str(bundle)
    assert state["rootfs"].endswith("rootfs")
    assert RFC3339.match(state["created"]), state["created"]
    assert {"ociVersion", "owner"} <= set(state)
    raw = pid_file.read_text()
    assert raw == str(state["pid"]), "pid file must be a bare integer without newline"
    cmdline = open(f"/proc/{state['pid']}/cmdline", "rb").read().split(b"\0")
    assert cmdline[0] != b"sleep", "the user process must not run before start"

    runtime.run("start", cid, check=True)
    state = wait_status(runtime, cid, "running")
    assert state["status"] == "running"
    assert open(f"/proc/{state['pid']}/cmdline", "rb").read().split(b"\0")[0] == b"sleep"

    runtime.run("kill", cid, "KILL", check=True)
    assert wait_status(runtime, cid, "stopped")["status"] == "stopped"
    runtime.run("delete", cid, check=True)
    gone = runtime.run("state", cid)
    assert gone.returncode != 0
    assert "does not exist" in gone.stderr


def test_state_output_is_pure_json(runtime, make_bundle, cid):
    runtime.run("create", "-b", str(make_bundle(SLEEPER)), cid, check=True)
    proc = runtime.run("state", cid, check=True)
    assert proc.stderr == ""
    schema = json.loads((SPEC / "state-schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(proc.stdout))


def test_run_prints_output_and_returns_exit_code(runtime, make_bundle, cid):
    bundle = make_bundle(["sh", "-c", "echo hi from the container; exit 7"])
    proc = runtime.run("run", "-b", str(bundle), cid)
    assert proc.returncode == 7
    assert "hi from the container" in proc.stdout
    assert cid not in runtime.ids(), "run without -d deletes the container at exit"


def test_run_killed_by_signal_gives_128_plus_signal(runtime, make_bundle, cid):
    bundle = make_bundle(SLEEPER)
    cmd = [*runtime.argv, "--root", str(runtime.root), "run", "-b", str(bundle), cid]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_status(runtime, cid, "running")
        runtime.run("kill", cid, "KILL", check=True)
        assert proc.wait(timeout=10) == 128 + 9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_forwards_signals(runtime, make_bundle, cid):
    script = "trap 'exit 42' TERM; while true; do sleep 0.05; done"
    cmd = [*runtime.argv, "--root", str(runtime.root), "run", "-b",
           str(make_bundle(["sh", "-c", script])), cid]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_status(runtime, cid, "running")
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 42
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_detached_then_list(runtime, make_bundle, cid):
    runtime.run("run", "-d", "-b", str(make_bundle(SLEEPER)), cid, check=True)
    assert runtime.state(cid)["status"] == "running"
    table = runtime.run("list", check=True).stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    row = next(line.split() for line in table[1:] if line.startswith(cid))
    assert row[2] == "running"
    listed = json.loads(runtime.run("list", "-f", "json", check=True).stdout)
    assert [c["status"] for c in listed if c["id"] == cid] == ["running"]
    assert runtime.run("list", "-q", check=True).stdout.split() == [cid]


@pytest.mark.parametrize("signal_arg", ["KILL", "SIGKILL", "9"])
def test_kill_signal_forms(runtime, make_bundle, cid, signal_arg):
    runtime.run("run", "-d", "-b", str(make_bundle(SLEEPER)), cid, check=True)
    runtime.run("kill", cid, signal_arg, check=True)
    assert wait_status(runtime, cid, "stopped")["status"] == "stopped"


def test_default_signal_is_term(runtime, make_bundle, cid):
    script = "trap 'exit 3' TERM; while true; do sleep 0.05; done"
    runtime.run("run", "-d", "-b", str(make_bundle(["sh", "-c", script])), cid, check=True)
    time.sleep(0.2)
    runtime.run("kill", cid, check=True)
    assert wait_status(runtime, cid, "stopped")["status"] == "stopped"


def test_kill_stopped_container_says_not_running(runtime, make_bundle, cid):
    runtime.run("run", "-d", "-b", str(make_bundle(["true"])), cid, check=True)
    wait_status(runtime, cid, "stopped")
    proc = runtime.run("kill", cid, "KILL")
    assert proc.returncode == 1
    assert "container not running" in proc.stderr


@pytest.mark.parametrize("command", [["start"], ["state"], ["kill"], ["delete"], ["pause"]])
def test_unknown_id_does_not_exist(runtime, command):
    proc = runtime.run(*command, "no-such-container")
    assert proc.returncode == 1
    assert "does not exist" in proc.stderr


def test_delete_running_needs_force(runtime, make_bundle, cid):
    runtime.run("run", "-d", "-b", str(make_bundle(SLEEPER)), cid, check=True)
    refused = runtime.run("delete", cid)
    assert refused.returncode == 1
    assert "running" in refused.stderr
    assert runtime.state(cid)["status"] == "running"
    runtime.run("delete", "--force", cid, check=True)
    assert cid not in runtime.ids()


def test_delete_created_container(runtime, make_bundle, cid):
    runtime.run("create", "-b", str(make_bundle(SLEEPER)), cid, check=True)
    pid = runtime.state(cid)["pid"]
    runtime.run("delete", cid, check=True)
    assert cid not in runtime.ids()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        stat = open(f"/proc/{pid}/stat").read()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.02)


def test_duplicate_id_fails_and_keeps_the_first(runtime, make_bundle, cid):
    bundle = make_bundle(SLEEPER)
    runtime.run("run", "-d", "-b", str(bundle), cid, check=True)
    pid = runtime.state(cid)["pid"]
    again = runtime.run("create", "-b", str(bundle), cid)
    assert again.returncode == 1
    assert "exists" in again.stderr
    state = runtime.state(cid)
    assert state["status"] == "running"
    assert state["pid"] == pid


def test_start_twice_fails(runtime, make_bundle, cid):
    runtime.run("create", "-b", str(make_bundle(SLEEPER)), cid, check=True)
    runtime.run("start", cid, check=True)
    again = runtime.run("start", cid)
    assert again.returncode == 1
    assert runtime.state(cid)["status"] == "running"


def test_pause_resume(runtime, make_bundle, cid):
    script = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.01; done"

    def writable(config: dict) -> None:
        config["root"]["readonly"] = False

    bundle = make_bundle(["sh", "-c", script], writable)
    runtime.run("run", "-d", "-b", str(bundle), cid, check=True)
    time.sleep(0.2)
    runtime.run("pause", cid, check=True)
    assert runtime.state(cid)["status"] == "paused"
    rootfs = runtime.state(cid)["rootfs"]
    first = open(os.path.join(rootfs, "tmp/count")).read()
    time.sleep(0.3)
    assert open(os.path.join(rootfs, "tmp/count")).read() == first, "a paused container ran"
    runtime.run("resume", cid, check=True)
    assert runtime.state(cid)["status"] == "running"
    time.sleep(0.3)
    assert open(os.path.join(rootfs, "tmp/count")).read() != first


def test_ps_json_lists_container_pids(runtime, make_bundle, cid):
    runtime.run("run", "-d", "-b", str(make_bundle(SLEEPER)), cid, check=True)
    pids = json.loads(runtime.run("ps", "--format", "json", cid, check=True).stdout)
    assert runtime.state(cid)["pid"] in pids


def test_json_log_gets_the_error_line(runtime, tmp_path):
    log = tmp_path / "log.json"
    proc = runtime.run("state", "nope", extra_global=["--log", str(log), "--log-format",
                                                       "json"])
    assert proc.returncode == 1
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    errors = [line for line in lines if line["level"] == "error"]
    assert errors and "does not exist" in errors[-1]["msg"]


def test_shared_default_parent_cgroup_is_removed(pyrunc, make_bundle, cid):
    """/pyrunc is made by whichever container comes first; the last one out removes it."""
    bundle = make_bundle(SLEEPER)
    first, second = cid + "a", cid + "b"
    pyrunc.run("run", "-d", "-b", str(bundle), first, check=True)
    pyrunc.run("run", "-d", "-b", str(bundle), second, check=True)
    parent = cgroupfs.hierarchy("memory").mountpoint + "/pyrunc"
    pyrunc.run("delete", "--force", first, check=True)
    assert os.path.isdir(parent)
    pyrunc.run("delete", "--force", second, check=True)
    others = [d for d in os.listdir(parent) if os.path.isdir(os.path.join(parent, d))] \
        if os.path.exists(parent) else []
    assert not os.path.exists(parent) or others, "empty /pyrunc left behind"
    assert first not in others and second not in others
