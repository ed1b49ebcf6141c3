"""Bad input: one clear line on stderr, an error line in --log, exit 1, nothing left behind."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.privileged


def assert_failed_cleanly(proc, runtime, cid: str) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert proc.stdout == ""
    assert proc.stderr.strip(), "an error message is expected"
    assert cid not in runtime.ids()
    assert not (runtime.root / cid).exists(), "state dir left behind"


def test_config_not_json(runtime, make_bundle, cid):
    bundle = make_bundle()
    (bundle / "config.json").write_text("{not json")
    proc = runtime.run("create", "-b", str(bundle), cid)
    assert_failed_cleanly(proc, runtime, cid)


def test_config_missing(runtime, make_bundle, cid):
    bundle = make_bundle()
    (bundle / "config.json").unlink()
    proc = runtime.run("create", "-b", str(bundle), cid)
    assert_failed_cleanly(proc, runtime, cid)


def test_config_is_a_directory(pyrunc, make_bundle, cid):
    bundle = make_bundle()
    (bundle / "config.json").unlink()
    (bundle / "config.json").mkdir()
    proc = pyrunc.run("create", "-b", str(bundle), cid)
    assert_failed_cleanly(proc, pyrunc, cid)
    assert "not a regular file" in proc.stderr


def test_rootfs_missing(runtime, make_bundle, cid):
    def gone(c):
        c["root"]["path"] = "no-such-rootfs"
    proc = runtime.run("create", "-b", str(make_bundle(["true"], gone)), cid)
    assert_failed_cleanly(proc, runtime, cid)


def test_schema_violation_names_the_json_path(pyrunc, make_bundle, cid):
    def bad(c):
        c["process"]["args"] = "sh -c true"
    proc = pyrunc.run("create", "-b", str(make_bundle(["true"], bad)), cid)
    assert_failed_cleanly(proc, pyrunc, cid)
    assert "config.json: $.process.args: expected array" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_command_fails_at_create(runtime, make_bundle, cid):
    proc = runtime.run("create", "-b", str(make_bundle(["/no/such/binary"])), cid)
    assert_failed_cleanly(proc, runtime, cid)
    assert "no such file or directory" in proc.stderr.lower()


def test_command_not_in_path(runtime, make_bundle, cid):
    proc = runtime.run("create", "-b", str(make_bundle(["no-such-command"])), cid)
    assert_failed_cleanly(proc, runtime, cid)
    assert "executable file not found in $PATH" in proc.stderr


@pytest.mark.parametrize("bad_id", ["../x", "a/b", ".", "..", "x" * 2000, "sp ace"])
def test_bad_container_ids(runtime, make_bundle, bad_id):
    proc = runtime.run("create", "-b", str(make_bundle()), bad_id)
    assert proc.returncode == 1
    assert list(runtime.root.iterdir()) == []


def test_bad_mount_is_cleaned_up(runtime, make_bundle, cid):
    def bad(c):
        c["mounts"].append({"destination": "/x", "type": "bind", "source": "/no/such/dir",
                            "options": ["bind"]})
    proc = runtime.run("create", "-b", str(make_bundle(["true"], bad)), cid)
    assert_failed_cleanly(proc, runtime, cid)


def test_failing_hook_is_cleaned_up(runtime, make_bundle, cid):
    def hook(c):
        c["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    proc = runtime.run("create", "-b", str(make_bundle(["true"], hook)), cid)
    assert_failed_cleanly(proc, runtime, cid)


def test_error_goes_to_json_log_too(pyrunc, make_bundle, cid, tmp_path):
    log = tmp_path / "log.json"
    proc = pyrunc.run("create", "-b", str(make_bundle(["no-such-command"])), cid,
                      extra_global=["--log", str(log), "--log-format", "json"])
    assert_failed_cleanly(proc, pyrunc, cid)
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error"
    assert "executable file not found" in last["msg"]
    assert set(last) == {"level", "msg", "time"}


def test_unknown_flag_and_command(pyrunc):
    for args in (["--bogus", "list"], ["bogus"], ["create", "--bogus", "x"], ["kill"]):
        proc = pyrunc.run(*args)
        assert proc.returncode == 1
        assert len(proc.stderr.strip().splitlines()) == 1
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("point", ["claimed", "planned", "cgroups", "spawned", "placement",
                                   "bootstrap", "init", "mounts", "ready", "recorded"])
def test_injected_failure_at_every_phase_leaves_nothing(pyrunc, make_bundle, cid, point):
    proc = pyrunc.run("create", "-b", str(make_bundle(["sleep", "10"])), cid,
                      env={"PYRUNC_TEST_FAULT": point})
    assert_failed_cleanly(proc, pyrunc, cid)
    assert f"injected fault at {point}" in proc.stderr


def test_non_executable_command_fails_at_create(runtime, make_bundle, cid):
    bundle = make_bundle(["/etc/passwd"])
    proc = runtime.run("create", "-b", str(bundle), cid)
    assert_failed_cleanly(proc, runtime, cid)
    assert "permission denied" in proc.stderr.lower()


def test_cgroup_write_rejected_is_cleaned_up(runtime, make_bundle, cid):
    def bad(c):
        c["linux"]["resources"] = {"cpu": {"cpus": "99-100"}}
    proc = runtime.run("create", "-b", str(make_bundle(["true"], bad)), cid)
    assert_failed_cleanly(proc, runtime, cid)
    if runtime.name == "pyrunc":
        assert "cpuset.cpus=99-100" in proc.stderr


def test_refused_id_mapping_is_cleaned_up(runtime, make_bundle, cid):
    def userns(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 10},
                                     {"containerID": 5, "hostID": 200000, "size": 10}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 10}]
    proc = runtime.run("create", "-b", str(make_bundle(["true"], userns)), cid)
    assert_failed_cleanly(proc, runtime, cid)


def test_refused_seccomp_filter_is_cleaned_up(pyrunc, make_bundle, cid):
    """(Every flag is supported here, WAIT_KILLABLE_RECV too: a refused rule stands in.)"""
    def seccomp(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x.sock",
                                 "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}
    proc = pyrunc.run("create", "-b", str(make_bundle(["true"], seccomp)), cid)
    assert_failed_cleanly(proc, pyrunc, cid)
    assert "linux.seccomp.syscalls[0]" in proc.stderr


@pytest.mark.parametrize("kind", ["fifo", "huge", "dangling-link"])
def test_odd_config_files(pyrunc, make_bundle, cid, kind):
    bundle = make_bundle()
    config = bundle / "config.json"
    config.unlink()
    if kind == "fifo":
        os.mkfifo(config)
    elif kind == "huge":
        with open(config, "wb") as f:
            f.truncate(100 << 20)
    else:
        os.symlink("/nonexistent/config.json", config)
    proc = pyrunc.run("create", "-b", str(bundle), cid, timeout=10)
    assert_failed_cleanly(proc, pyrunc, cid)
    assert "config.json" in proc.stderr


@pytest.mark.parametrize("command", ["/dev/null", "../../etc", "/proc/self/exe"])
def test_commands_found_by_fuzzing_fail_at_create(pyrunc, make_bundle, cid, command):
    """Each once got past create and failed only at exec (126/127) in the fuzz run."""
    proc = pyrunc.run("run", "-b", str(make_bundle([command])), cid)
    assert_failed_cleanly(proc, pyrunc, cid)
