"""The schema, the generated checker and the semantic rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ociruntime.config import _schema_check
from ociruntime.config.defaults import default_spec
from ociruntime.config.schema_compiler import SCHEMA, compile_schema
from ociruntime.config.validate import check_semantics, validate_config, validate_process
from ociruntime.errors import ConfigError
from tests.helpers import json_paths, set_at

SCHEMA_DOC = json.loads(SCHEMA.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA_DOC)


def full_config() -> dict:
    """A config using most of what the schema models."""
    c = default_spec()
    c["process"]["user"]["additionalGids"] = [5, 10]
    c["process"]["oomScoreAdj"] = 100
    c["process"]["consoleSize"] = {"height": 24, "width": 80}
    c["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 3}
    c["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    c["process"]["execCPUAffinity"] = {"initial": "0", "final": "0-1"}
    c["hooks"] = {k: [{"path": "/bin/true", "args": ["true"], "env": ["A=b"], "timeout": 5}]
                  for k in ("prestart", "createRuntime", "createContainer", "startContainer",
                            "poststart", "poststop")}
    c["annotations"] = {"org.example": "yes"}
    linux = c["linux"]
    linux["namespaces"] += [{"type": "user"}, {"type": "cgroup"}, {"type": "time"}]
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                         "fileMode": 0o666, "uid": 0, "gid": 0}]
    linux["resources"].update({
        "memory": {"limit": 1 << 30, "reservation": 1 << 29, "swap": 1 << 31, "swappiness": 10,
                   "disableOOMKiller": False},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 100},
        "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
        "network": {"classID": 1, "priorities": [{"name": "eth0", "priority": 1}]},
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 100}},
        "unified": {"memory.high": "max"},
    })
    linux["cgroupsPath"] = "/pyrunc/test"
    linux["rootfsPropagation"] = "rslave"
    linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                      "errnoRet": 1,
                                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}
    linux["personality"] = {"domain": "LINUX"}
    linux["timeOffsets"] = {"monotonic": {"secs": 10, "nanosecs": 0}}
    linux["netDevices"] = {"eth1": {"name": "eth9"}}
    linux["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}
    c["mounts"].append({"destination": "/data", "type": "bind", "source": "/tmp",
                        "options": ["rbind", "idmap"],
                        "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
                        "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]})
    return c


GOOD = [default_spec(), default_spec(rootless=True), full_config()]


def test_schema_is_a_valid_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA_DOC)


def test_generated_checker_is_up_to_date():
    committed = Path(_schema_check.__file__).read_text()
    assert committed == compile_schema(SCHEMA_DOC), (
        "regenerate: python3 -m ociruntime.config.schema_compiler > "
        "ociruntime/config/_schema_check.py")


@pytest.mark.parametrize("doc", GOOD, ids=["default", "rootless", "full"])
def test_good_configs_pass_everything(doc):
    assert VALIDATOR.is_valid(doc)
    assert _schema_check.check(doc)
    validate_config(doc)
    check_semantics(doc)


def test_unknown_fields_tolerated():
    doc = default_spec()
    doc["x-vendor"] = {"anything": [1, 2]}
    doc["process"]["somethingNew"] = True
    doc["linux"]["futureField"] = "ok"
    validate_config(doc)


def _mutate(path: str, value: object):
    def apply(doc: dict) -> None:
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return apply


DELETE = object()

BAD_SCHEMA = [
    ("ociVersion", DELETE, "$", "ociVersion"),
    ("ociVersion", 1, "$.ociVersion", "expected string"),
    ("ociVersion", "one", "$.ociVersion", "does not match"),
    ("process.args", "sh", "$.process.args", "expected array"),
    ("process.args.0", 3, "$.process.args[0]", "expected string"),
    ("process.cwd", DELETE, "$.process", "cwd"),
    ("process.terminal", "yes", "$.process.terminal", "expected boolean"),
    ("process.user.uid", -1, "$.process.user.uid", "minimum"),
    ("process.user.uid", 1 << 32, "$.process.user.uid", "maximum"),
    ("process.user.uid", 1.5, "$.process.user.uid", "expected integer"),
    ("process.user.gid", True, "$.process.user.gid", "expected integer"),
    ("process.env.0", "NOEQUALS", "$.process.env[0]", "does not match"),
    ("process.capabilities.bounding.0", "KILL", "$.process.capabilities.bounding[0]",
     "does not match"),
    ("process.rlimits.0.type", "NOFILE", "$.process.rlimits[0].type", "does not match"),
    ("process.rlimits.0.soft", -5, "$.process.rlimits[0].soft", "minimum"),
    ("process.oomScoreAdj", 5000, "$.process.oomScoreAdj", "maximum"),
    ("root.path", 7, "$.root.path", "expected string"),
    ("root.readonly", "true", "$.root.readonly", "expected boolean"),
    ("mounts.0.destination", DELETE, "$.mounts[0]", "destination"),
    ("mounts.0.options", "ro", "$.mounts[0].options", "expected array"),
    ("hostname", 5, "$.hostname", "expected string"),
    ("linux.namespaces.0.type", "pidd", "$.linux.namespaces[0].type", "not one of"),
    ("linux.namespaces.0.path", "relative/ns", "$.linux.namespaces[0].path", "does not match"),
    ("linux.maskedPaths.0", "proc/kcore", "$.linux.maskedPaths[0]", "does not match"),
    ("linux.resources.devices.0.allow", "no", "$.linux.resources.devices[0].allow",
     "expected boolean"),
    ("linux.resources.devices.0.access", "rwx", "$.linux.resources.devices[0].access",
     "does not match"),
    ("linux.rootfsPropagation", "sideways", "$.linux.rootfsPropagation", "not one of"),
    ("linux.sysctl", {"a": 1}, "$.linux.sysctl.a", "expected string"),
    ("annotations", {"k": 2}, "$.annotations.k", "expected string"),
    ("linux.cgroupsPath", 9, "$.linux.cgroupsPath", "expected string"),
]


@pytest.mark.parametrize("path,value,where,why", BAD_SCHEMA, ids=[b[0] for b in BAD_SCHEMA])
def test_schema_violations_name_the_path(path, value, where, why):
    doc = default_spec()
    _mutate(path, value)(doc)
    assert not _schema_check.check(doc)
    with pytest.raises(ConfigError) as info:
        validate_config(doc, "bundle/config.json")
    message = str(info.value)
    assert message.startswith(f"invalid config: bundle/config.json: {where}"), message
    assert why in message
    assert "\n" not in message


BAD_SEMANTICS = [
    ("process.args", [], "$.process.args", "non-empty"),
    ("process.cwd", "tmp", "$.process.cwd", "absolute"),
    ("process.capabilities.bounding.0", "CAP_NOT_REAL", "$.process.capabilities.bounding[0]",
     "unknown capability"),
    ("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}],
     "$.process.rlimits[0]", "above the hard limit"),
    ("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 5},
                         {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 5}],
     "$.process.rlimits[1]", "duplicate"),
    ("process.rlimits", [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 5}],
     "$.process.rlimits[0].type", "unknown rlimit"),
    ("linux.namespaces", [{"type": "pid"}, {"type": "pid"}, {"type": "mount"}],
     "$.linux.namespaces[1]", "duplicate"),
    ("linux.namespaces", [{"type": "pid"}, {"type": "mount"}], "$.hostname", "uts"),
    ("linux.uidMappings", [{"containerID": 0, "hostID": 1, "size": 1}], "$.linux.uidMappings",
     "user namespace"),
    ("linux.timeOffsets", {"monotonic": {"secs": 1}}, "$.linux.timeOffsets", "time namespace"),
]


@pytest.mark.parametrize("path,value,where,why", BAD_SEMANTICS,
                         ids=[b[0] + "-" + b[3] for b in BAD_SEMANTICS])
def test_semantic_violations(path, value, where, why):
    doc = default_spec()
    _mutate(path, value)(doc)
    validate_config(doc)
    with pytest.raises(ConfigError) as info:
        check_semantics(doc, "config.json")
    assert f"config.json: {where}" in str(info.value)
    assert why in str(info.value)


def test_user_namespace_without_mappings():
    doc = default_spec()
    doc["linux"]["namespaces"].append({"type": "user"})
    with pytest.raises(ConfigError, match="uidMappings and gidMappings"):
        check_semantics(doc)


def test_validate_process_for_exec():
    process = copy.deepcopy(default_spec()["process"])
    validate_process(process)
    process["args"] = "sh"
    with pytest.raises(ConfigError, match=r"process.json: \$.args"):
        validate_process(process, "process.json")


# --- the generated checker never accepts what jsonschema rejects -------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**65), max_value=2**65),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=10)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(GOOD), data=st.data())
def test_checker_agrees_with_jsonschema(base, data):
    doc = copy.deepcopy(base)
    paths = json_paths(doc)[1:]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        set_at(doc, path, data.draw(json_value))
    fast = _schema_check.check(doc)
    slow = VALIDATOR.is_valid(doc)
    if fast:
        assert slow, f"the generated checker accepted what jsonschema rejects: {doc!r}"
