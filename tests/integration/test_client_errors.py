"""Errors as containerd's shim and conmon see them, against pyrunc and runc alike.

Both pass `--log FILE` in JSON format (the shim as `--log F --log-format json`, conmon as
`--log-format=json --log F`) and show their user only the last {"level":"error"} line of it;
the shim classifies kill errors by runc's phrases; go-runc parses stdout+stderr of state and
ps as JSON, so a successful query must print nothing on stderr.
"""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.privileged

FLAG_FORMS = {
    "shim": lambda log: ["--log", str(log), "--log-format", "json"],
    "conmon": lambda log: ["--log-format=json", "--log", str(log)],
}

# (argv with {running}, {stopped}, {missing}, {bad_bundle}, {bundle}, {new}; a phrase both
# runtimes put in the message, or "" for a message of their own; the exit code)
FAILURES = [
    (["state", "{missing}"], "container does not exist", 1),
    (["kill", "{missing}", "9"], "does not exist", 1),  # the shim: "no such container"
    (["kill", "{stopped}", "15"], "container not running", 1),  # "process already finished"
    (["kill", "{stopped}", "9"], "container not running", 1),
    (["delete", "{missing}"], "container does not exist", 1),
    (["delete", "{running}"], "cannot delete container {running} that is not stopped: running",
     1),
    (["start", "{running}"], "cannot start an already running container", 1),
    (["start", "{stopped}"], "cannot start a container that has stopped", 1),
    (["pause", "{stopped}"], "container not running", 1),
    (["resume", "{running}"], "container not paused", 1),
    (["ps", "--format", "json", "{missing}"], "container does not exist", 1),
    (["exec", "{stopped}", "true"], "exec failed: cannot exec in a stopped container", 255),
    (["exec", "{running}", "/no/such"],
     'exec: "/no/such": stat /no/such: no such file or directory', 255),
    (["create", "--bundle", "{bad_bundle}", "{new}"],
     'exec: "/no/such/command": stat /no/such/command: no such file or directory', 1),
    (["create", "--bundle", "{bundle}", "{running}"], "exists", 1),
    (["create", "--bogus", "{new}"], "flag provided but not defined", 1),
    (["no-such-command"], "", None),  # runc exits 3 here (its help topic lookup), pyrunc 1
]

QUERIES = [
    (["state", "{running}"], True),
    (["state", "{stopped}"], True),
    (["ps", "--format", "json", "{running}"], True),
    (["ps", "{running}"], False),
    (["features"], True),
    (["list", "--format", "json"], True),
    (["list"], False),
]


def _wait_stopped(runtime, cid: str) -> None:
    for _ in range(250):
        if runtime.state(cid)["status"] == "stopped":
            return
        time.sleep(0.02)
    raise AssertionError(f"{cid} did not stop")


@pytest.fixture
def names(runtime, make_bundle, cid) -> dict[str, str]:
    """A running and a stopped container, and the names and bundles the cases use."""
    bundle = make_bundle(["sleep", "300"])
    runtime.run("run", "-d", "-b", str(bundle), cid + "r", check=True)
    runtime.run("run", "-d", "-b", str(make_bundle(["true"])), cid + "s", check=True)
    _wait_stopped(runtime, cid + "s")
    return {"running": cid + "r", "stopped": cid + "s", "missing": cid + "m",
            "new": cid + "n", "bundle": str(bundle),
            "bad_bundle": str(make_bundle(["/no/such/command"]))}


@pytest.mark.parametrize("form", FLAG_FORMS)
def test_every_failure_ends_the_log_with_one_error_line(runtime, names, tmp_path, form):
    wrong = []
    for n, (argv, phrase, code) in enumerate(FAILURES):
        log = tmp_path / f"log{n}.json"
        args = [a.format(**names) for a in argv]
        proc = runtime.run(*FLAG_FORMS[form](log), *args)
        lines = log.read_text().splitlines() if log.exists() else []
        try:
            docs = [json.loads(line) for line in lines]
        except ValueError:
            wrong.append(f"{args}: not JSON lines: {lines}")
            continue
        errors = [d for d in docs if d.get("level") == "error"]
        if code is not None and proc.returncode != code or proc.returncode == 0:
            wrong.append(f"{args}: exit {proc.returncode}, wanted {code}")
        if len(errors) != 1 or docs[-1] is not errors[0]:
            wrong.append(f"{args}: wanted exactly one final error line: {lines}")
            continue
        msg = errors[0]["msg"]
        if phrase.format(**names) not in msg:
            wrong.append(f"{args}: {msg!r} lacks {phrase!r}")
        if msg.strip() not in proc.stderr:
            wrong.append(f"{args}: stderr {proc.stderr!r} does not show {msg!r}")
    assert not wrong, "\n".join(wrong)
    assert sorted(runtime.ids()) == sorted([names["running"], names["stopped"]]), \
        "a failure left a container behind"


@pytest.mark.parametrize("form", FLAG_FORMS)
def test_successful_queries_are_silent(runtime, names, tmp_path, form):
    log = tmp_path / "log.json"
    for argv, is_json in QUERIES:
        args = [a.format(**names) for a in argv]
        proc = runtime.run(*FLAG_FORMS[form](log), *args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert proc.stderr == "", (args, proc.stderr)
        if is_json:
            json.loads(proc.stdout)  # go-runc merges stderr in: any extra text breaks this
    lines = log.read_text().splitlines() if log.exists() else []
    assert not [line for line in lines if json.loads(line).get("level") in ("error", "warning")]


def test_kill_all_of_a_stopped_container_succeeds(runtime, names):
    """runc 1.1.5 signals whatever is left in the cgroup: nothing, and that is no error (the
    shim's `task delete --force` sends `kill --all ID 9` whatever the task's state)."""
    proc = runtime.run("kill", "--all", names["stopped"], "9")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert runtime.state(names["stopped"])["status"] == "stopped"
