"""OCI hooks: state on stdin, their own args/env, namespaces, failure semantics."""

from __future__ import annotations

import json
import os
import stat

import pytest

pytestmark = pytest.mark.privileged

KINDS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop"]


def hook_script(tmp_path, log):
    script = tmp_path / "hook.sh"
    script.write_text("#!/bin/sh\n"
                      f'echo "$1|$(cat)|$(readlink /proc/self/ns/mnt)|$HOOKVAR" >> {log}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_all_hooks_run_in_order_with_state(runtime, make_bundle, cid, tmp_path):
    log = tmp_path / "hooks.log"
    script = hook_script(tmp_path, log)

    def hooks(c):
        c["hooks"] = {k: [{"path": str(script), "args": ["hook.sh", k],
                           "env": ["HOOKVAR=set"]}] for k in KINDS if k != "startContainer"}
        # startContainer runs inside the container: use the container's sh
        c["hooks"]["startContainer"] = [{"path": "/bin/sh", "args": ["sh", "-c", "true"]}]
        c["annotations"] = {"hook.test": "yes"}
    bundle = make_bundle(["true"], hooks)
    runtime.run("create", "-b", str(bundle), cid, check=True)
    runtime.run("start", cid, check=True)
    runtime.run("delete", "--force", cid, check=True)
    lines = [line.split("|") for line in log.read_text().splitlines()]
    assert [line[0] for line in lines] == ["prestart", "createRuntime", "createContainer",
                                           "poststart", "poststop"]
    host_mnt = os.readlink("/proc/self/ns/mnt")
    by_kind = {line[0]: line for line in lines}
    for kind in ("prestart", "createRuntime", "poststart", "poststop"):
        assert by_kind[kind][2] == host_mnt, f"{kind} runs in the runtime's namespace"
    assert by_kind["createContainer"][2] != host_mnt, "createContainer runs in the container's"
    assert all(line[3] == "set" for line in lines)
    states = {k: json.loads(v[1]) for k, v in by_kind.items()}
    assert states["prestart"]["status"] == "creating"
    assert states["createRuntime"]["id"] == cid
    assert states["createRuntime"]["bundle"] == str(bundle)
    assert states["createRuntime"]["pid"] > 0
    if runtime.name == "pyrunc":  # runc 1.1.5 still reports "created" to poststart hooks
        assert states["poststart"]["status"] == "running"
    assert states["poststop"]["status"] == "stopped"
    assert states["poststart"]["annotations"] == {"hook.test": "yes"}


def test_failing_start_container_hook_fails_start(pyrunc, make_bundle, cid):
    def hooks(c):
        c["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
                                                                      "echo nope >&2; exit 3"]}]}
    pyrunc.run("create", "-b", str(make_bundle(["sleep", "10"], hooks)), cid, check=True)
    proc = pyrunc.run("start", cid)
    assert proc.returncode == 1
    assert "startContainer" in proc.stderr and "nope" in proc.stderr
    assert pyrunc.state(cid)["status"] == "stopped"


def test_failing_poststart_stops_the_container(pyrunc, make_bundle, cid):
    def hooks(c):
        c["hooks"] = {"poststart": [{"path": "/bin/false"}]}
    pyrunc.run("create", "-b", str(make_bundle(["sleep", "10"], hooks)), cid, check=True)
    proc = pyrunc.run("start", cid)
    assert proc.returncode == 1
    assert "poststart" in proc.stderr
    assert pyrunc.state(cid)["status"] == "stopped"


def test_failing_poststop_is_a_warning(pyrunc, make_bundle, cid, tmp_path):
    log = tmp_path / "log.json"

    def hooks(c):
        c["hooks"] = {"poststop": [{"path": "/bin/false"}]}
    pyrunc.run("run", "-d", "-b", str(make_bundle(["true"], hooks)), cid, check=True)
    proc = pyrunc.run("delete", "--force", cid, extra_global=["--log", str(log),
                                                              "--log-format", "json"])
    assert proc.returncode == 0
    assert proc.stderr == ""
    warnings = [json.loads(x) for x in log.read_text().splitlines()]
    assert any(w["level"] == "warning" and "poststop" in w["msg"] for w in warnings)


def test_hook_timeout(pyrunc, make_bundle, cid):
    def hooks(c):
        c["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"],
                                         "timeout": 1}]}
    proc = pyrunc.run("create", "-b", str(make_bundle(["true"], hooks)), cid)
    assert proc.returncode == 1
    assert "timed out" in proc.stderr
    assert cid not in pyrunc.ids()
