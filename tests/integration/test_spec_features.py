"""`spec` writes a runnable default config; `features` is clean JSON built from the parser's
tables."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from bundles.busybox import cached_rootfs
from ociruntime.config.mount_options import parse_mount_options
from ociruntime.config.validate import validate_config

pytestmark = pytest.mark.privileged


def test_spec_writes_a_runnable_config(pyrunc, tmp_path, cid):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    pyrunc.run("spec", "--bundle", str(bundle), check=True)
    config = json.loads((bundle / "config.json").read_text())
    validate_config(config)
    assert pyrunc.run("spec", "--bundle", str(bundle)).returncode == 1, "must not overwrite"
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", "echo spec-ok"]
    (bundle / "config.json").write_text(json.dumps(config))
    shutil.copytree(cached_rootfs(), bundle / "rootfs", symlinks=True)
    proc = pyrunc.run("run", "-b", str(bundle), cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "spec-ok\n"


def test_spec_rootless_validates(pyrunc, tmp_path):
    pyrunc.run("spec", "--rootless", "--bundle", str(tmp_path), check=True)
    config = json.loads((tmp_path / "config.json").read_text())
    validate_config(config)
    assert {"type": "user"} in config["linux"]["namespaces"]


SPEC = Path(__file__).resolve().parents[2] / "spec"


def test_features_is_clean_json_from_the_tables(pyrunc):
    proc = pyrunc.run("features", check=True)
    assert proc.stderr == ""
    doc = json.loads(proc.stdout)
    schema = json.loads((SPEC / "features-schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    from ociruntime.config.known import CAPABILITIES
    from ociruntime.linux.seccomp import ACTIONS

    assert doc["linux"]["capabilities"] == list(CAPABILITIES), "same table as the parser"
    assert doc["linux"]["seccomp"]["actions"] == list(ACTIONS)
    assert doc["ociVersionMin"] == "1.0.0"
    assert set(doc["hooks"]) == {"prestart", "createRuntime", "createContainer",
                                 "startContainer", "poststart", "poststop"}
    assert "CAP_SYS_ADMIN" in doc["linux"]["capabilities"]
    assert set(doc["linux"]["namespaces"]) == {"pid", "network", "mount", "ipc", "uts", "user",
                                               "cgroup", "time"}
    seccomp = doc["linux"]["seccomp"]
    assert seccomp["enabled"] is True
    assert "SCMP_ACT_NOTIFY" in seccomp["actions"] and "SCMP_CMP_MASKED_EQ" in seccomp["operators"]
    assert set(seccomp["supportedFlags"]) <= set(seccomp["knownFlags"])
    for option in doc["mountOptions"]:
        parsed = parse_mount_options([option])
        assert not parsed.data, f"{option} is listed but would be passed as fs data"
