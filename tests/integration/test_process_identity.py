"""The container process's identity, read by the process itself (tests/integration/probe.c
`self`: its /proc/self/status Cap*/Uid/Gid/Groups/NoNewPrivs lines, its open-files limit and
prctl's securebits and keepcaps), for `run` and for `exec`. Each expectation below is what
runc 1.1.5 produces on the same config; both runtimes must produce exactly it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ociruntime.config.known import CAPABILITIES
from tests.integration.probe import build as build_probe

pytestmark = pytest.mark.privileged

SETS = {
    "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETPCAP"],
    "effective": ["CAP_CHOWN", "CAP_KILL"],
    "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
    "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
    "ambient": ["CAP_KILL"],
}
ROOT = {"Uid": "0 0 0 0", "Gid": "0 0 0 0", "Groups": ""}
USER = {"Uid": "1000 1000 1000 1000", "Gid": "1000 1000 1000 1000"}
NO_CAPS = {"CapInh": (), "CapPrm": (), "CapEff": (), "CapBnd": (), "CapAmb": ()}


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_probe(tmp_path_factory.mktemp("probe"))


def identity(out: str) -> dict:
    """probe self's output: cap sets as sorted name tuples, the rest as text."""
    names = {number: name for name, number in CAPABILITIES.items()}
    found: dict = {}
    for line in out.splitlines():
        if line.startswith("Max open files"):
            found["nofile"] = " ".join(line.split()[3:5])
        elif line.startswith("securebits="):
            found.update(part.split("=") for part in line.split())
        elif ":" in line:
            key, value = line.split(":", 1)
            value = " ".join(value.split())
            if key.startswith("Cap"):
                mask = int(value, 16)
                found[key] = tuple(sorted(names[i] for i in names if mask >> i & 1))
            else:
                found[key] = value
    return found


def caps(**sets: list[str]) -> dict:
    """Expected Cap* entries: {CapInh: names...}; sets not given are empty."""
    return {**NO_CAPS, **{key: tuple(sorted(names)) for key, names in sets.items()}}


def run_self(rt, make_bundle, probe, cid, tweak) -> dict:
    def overrides(c):
        c["process"]["args"] = ["/probe", "self"]
        tweak(c)
    bundle = make_bundle(["/probe", "self"], overrides)
    shutil.copy(probe, bundle / "rootfs" / "probe")
    proc = rt.run("run", "-b", str(bundle), cid)
    assert proc.returncode == 0, proc.stderr
    return identity(proc.stdout)


def subset(found: dict, expected: dict) -> dict:
    return {key: found.get(key) for key in expected}


def _process(**fields):
    return lambda c: c["process"].update(fields)


def _no_caps(user=None):
    def tweak(c):
        del c["process"]["capabilities"]
        if user:
            c["process"]["user"] = user
    return tweak


RUN_CASES = {
    # root: the five sets as configured; ambient needs inheritable+permitted (it has both)
    "root-five-sets": (_process(capabilities=SETS), {
        **ROOT, **caps(CapInh=SETS["inheritable"], CapPrm=["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
                       CapEff=["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"], CapBnd=SETS["bounding"],
                       CapAmb=["CAP_KILL"]),
        "NoNewPrivs": "1", "securebits": "0", "keepcaps": "0"}),
    # uid 1000 keeps its caps across the switch (keepcaps on, then off again; securebits
    # untouched); after execve a non-root process keeps only what is ambient
    "user-ambient-survives-exec": (_process(
        capabilities=SETS, noNewPrivileges=False,
        user={"uid": 1000, "gid": 1000, "additionalGids": [10, 20]}), {
        **USER, "Groups": "10 20",
        **caps(CapInh=SETS["inheritable"], CapPrm=["CAP_KILL"], CapEff=["CAP_KILL"],
               CapBnd=SETS["bounding"], CapAmb=["CAP_KILL"]),
        "NoNewPrivs": "0", "securebits": "0", "keepcaps": "0"}),
    "user-without-ambient-has-none": (_process(
        user={"uid": 1000, "gid": 1000},
        capabilities={k: ["CAP_CHOWN", "CAP_KILL"] for k in ("bounding", "effective",
                                                              "permitted")}
        | {"inheritable": ["CAP_KILL"]}), {
        **USER, **caps(CapInh=["CAP_KILL"], CapBnd=["CAP_CHOWN", "CAP_KILL"])}),
    # ambient without inheritable: the kernel refuses the raise, and runc goes on without it
    "ambient-not-inheritable-is-dropped": (_process(capabilities={
        "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
        "ambient": ["CAP_KILL"]}), caps(CapPrm=["CAP_KILL"], CapEff=["CAP_KILL"],
                                        CapBnd=["CAP_KILL"])),
    # no process.capabilities at all: every set empty (not the runtime's own)
    "no-capabilities-field": (_no_caps(), {**ROOT, **NO_CAPS}),
    "no-capabilities-field-user": (_no_caps({"uid": 1000, "gid": 1000}), {**USER, **NO_CAPS}),
    "empty-capabilities": (_process(capabilities={}), NO_CAPS),
    # CAP_SYS_RESOURCE is not in this host's bounding set (machine.md): in the bounding set
    # alone it is simply not there afterwards
    "cap-the-host-lacks-in-bounding": (_process(capabilities={
        "bounding": ["CAP_SYS_RESOURCE", "CAP_KILL"], "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL"]}), caps(CapPrm=["CAP_KILL"], CapEff=["CAP_KILL"],
                                          CapBnd=["CAP_KILL"])),
    "groups-of-root": (_process(user={"uid": 0, "gid": 0, "additionalGids": [5]}),
                       {**ROOT, "Groups": "5"}),
}


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_run(runtime, make_bundle, probe, cid, case):
    tweak, expected = RUN_CASES[case]
    found = run_self(runtime, make_bundle, probe, cid, tweak)
    assert subset(found, expected) == expected


def test_cap_the_host_cannot_grant_fails(runtime, make_bundle, cid):
    """CAP_SYS_RESOURCE asked for in permitted, which this host's runtime does not have:
    capset fails and so does create (runc 1.1.5 too), nothing left behind."""
    def tweak(c):
        c["process"]["capabilities"] = {k: ["CAP_SYS_RESOURCE", "CAP_KILL"] for k in SETS}
    proc = runtime.run("run", "-b", str(make_bundle(["true"], tweak)), cid)
    assert proc.returncode == 1
    assert "operation not permitted" in proc.stderr.lower(), proc.stderr
    assert runtime.ids() == []


def test_unknown_capability_name(runtime, make_bundle, cid):
    """A name no kernel has: pyrunc rejects the config at validation (issue 3's rule, a typo
    must not silently weaken or strengthen a container); runc 1.1.5 warns and ignores it."""
    def tweak(c):
        c["process"]["capabilities"]["bounding"].append("CAP_NOT_A_CAP")
    proc = runtime.run("run", "-b", str(make_bundle(["true"], tweak)), cid)
    if runtime.name == "pyrunc":
        assert proc.returncode == 1
        assert "process.capabilities.bounding[3]" in proc.stderr
        assert "unknown capability 'CAP_NOT_A_CAP'" in proc.stderr
    else:
        assert proc.returncode == 0
        assert "ignoring unknown or unavailable capabilities" in proc.stderr


EXEC_CAPS = {
    "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETPCAP", "CAP_SETUID",
                 "CAP_SETGID"],
    "effective": ["CAP_CHOWN", "CAP_KILL"],
    "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
    "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
    "ambient": ["CAP_KILL"],
}
BOUNDING = EXEC_CAPS["bounding"]
EXEC_CASES = {
    # root without no_new_privs: execve gives root the whole (container) bounding set
    "from-config": ([], {**ROOT, **caps(CapInh=EXEC_CAPS["inheritable"], CapPrm=BOUNDING,
                                         CapEff=BOUNDING, CapBnd=BOUNDING, CapAmb=["CAP_KILL"]),
                         "NoNewPrivs": "0", "nofile": "1024 1024"}),
    "cap-adds-to-ambient": (["--cap", "CAP_NET_RAW", "--cap", "CAP_SETUID"], caps(
        CapInh=EXEC_CAPS["inheritable"], CapPrm=BOUNDING, CapEff=BOUNDING, CapBnd=BOUNDING,
        CapAmb=["CAP_KILL", "CAP_NET_RAW"])),
    "user-and-groups": (["--user", "1000:1000", "--additional-gids", "10"], {
        **USER, "Groups": "10", **caps(CapInh=EXEC_CAPS["inheritable"], CapPrm=["CAP_KILL"],
                                       CapEff=["CAP_KILL"], CapBnd=BOUNDING,
                                       CapAmb=["CAP_KILL"])}),
    "user-with-cap": (["--user", "1000:1000", "--cap", "CAP_NET_RAW"], {
        **USER, **caps(CapInh=EXEC_CAPS["inheritable"], CapPrm=["CAP_KILL", "CAP_NET_RAW"],
                       CapEff=["CAP_KILL", "CAP_NET_RAW"], CapBnd=BOUNDING,
                       CapAmb=["CAP_KILL", "CAP_NET_RAW"])}),
    "no-new-privs": (["--no-new-privs"], {"NoNewPrivs": "1", **caps(
        CapInh=EXEC_CAPS["inheritable"], CapPrm=EXEC_CAPS["permitted"],
        CapEff=EXEC_CAPS["permitted"], CapBnd=BOUNDING, CapAmb=["CAP_KILL"])}),
    # a process.json without capabilities gets the container's, not the runtime's full set:
    # the exec'd process must not escape the container's bounding set (without rlimits it
    # keeps the runtime's own limits, as in runc 1.1.5)
    "process-file-without-caps": ({}, caps(
        CapInh=EXEC_CAPS["inheritable"], CapPrm=BOUNDING, CapEff=BOUNDING, CapBnd=BOUNDING,
        CapAmb=["CAP_KILL"])),
    "process-file-with-caps": ({"capabilities": {k: ["CAP_KILL"] for k in
                                                 ("bounding", "effective", "permitted")}},
                               caps(CapPrm=["CAP_KILL"], CapEff=["CAP_KILL"],
                                    CapBnd=["CAP_KILL"])),
}


@pytest.mark.parametrize("case", list(EXEC_CASES))
def test_exec(runtime, make_bundle, probe, cid, case, tmp_path):
    how, expected = EXEC_CASES[case]

    def tweak(c):
        c["process"]["capabilities"] = EXEC_CAPS
        c["process"]["noNewPrivileges"] = False
    bundle = make_bundle(["sleep", "30"], tweak)
    shutil.copy(probe, bundle / "rootfs" / "probe")
    runtime.run("run", "-d", "-b", str(bundle), cid, check=True)
    if isinstance(how, dict):
        process = {"args": ["/probe", "self"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                   "env": ["PATH=/bin"], **how}
        (tmp_path / "process.json").write_text(json.dumps(process))
        proc = runtime.run("exec", "-p", str(tmp_path / "process.json"), cid)
    else:
        proc = runtime.run("exec", *how, cid, "/probe", "self")
    assert proc.returncode == 0, proc.stderr
    assert subset(identity(proc.stdout), expected) == expected
