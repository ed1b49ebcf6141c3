"""Capability sets as the kernel holds them after our ctypes calls, read back independently
through python-prctl (libcap) in a forked child, across the uid switch as runc does it."""

from __future__ import annotations

import json
import os

import prctl
import pytest

from ociruntime.config.known import CAPABILITIES, last_cap
from ociruntime.linux.capabilities import CapabilitySets, _mask, unknown_to_kernel
from ociruntime.process.user_process import switch_user

pytestmark = pytest.mark.privileged

CONFIG = {
    "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID"],
    "effective": ["CAP_CHOWN", "CAP_KILL"],
    "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
    "inheritable": ["CAP_KILL"],
    "ambient": ["CAP_KILL"],
}


def _in_child(user: dict) -> dict:
    """Switch user with CONFIG's caps in a forked child; what python-prctl then reads."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            switch_user(user, CapabilitySets(CONFIG))
            numbers = list(range(last_cap() + 1))
            sets = prctl.get_caps((numbers, [prctl.CAP_EFFECTIVE, prctl.CAP_PERMITTED,
                                             prctl.CAP_INHERITABLE]))
            with open("/proc/self/status") as f:
                amb = next(line.split()[1] for line in f if line.startswith("CapAmb:"))
            doc = {
                "uid": os.getresuid(), "gid": os.getresgid(), "groups": os.getgroups(),
                "bounding": [c for c in numbers if prctl.capbset_read(c)],
                "effective": [c for c, on in sets[prctl.CAP_EFFECTIVE].items() if on],
                "permitted": [c for c, on in sets[prctl.CAP_PERMITTED].items() if on],
                "inheritable": [c for c, on in sets[prctl.CAP_INHERITABLE].items() if on],
                "ambient": int(amb, 16),
                "keepcaps": prctl.get_keepcaps(), "securebits": prctl.get_securebits(),
            }
            os.write(write_end, json.dumps(doc).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        text = f.read()
    os.waitpid(pid, 0)
    assert text, "the child failed before reporting"
    return json.loads(text)


def _numbers(names: list[str]) -> list[int]:
    return sorted(CAPABILITIES[n] for n in names)


@pytest.mark.parametrize("user", [{"uid": 0, "gid": 0},
                                  {"uid": 1000, "gid": 1001, "additionalGids": [5, 7]}],
                         ids=["root", "uid1000"])
def test_sets_read_back_through_libcap(user):
    before = prctl.get_securebits()
    got = _in_child(user)
    uid, gid = user["uid"], user["gid"]
    assert got["uid"] == [uid] * 3 and got["gid"] == [gid] * 3
    assert sorted(got["groups"]) == sorted(user.get("additionalGids", []))
    for kind in ("bounding", "effective", "permitted", "inheritable"):
        assert sorted(got[kind]) == _numbers(CONFIG[kind]), kind
    assert got["ambient"] == 1 << CAPABILITIES["CAP_KILL"]
    # runc's order: keepcaps only around the uid switch, securebits never touched
    assert not got["keepcaps"]
    assert got["securebits"] == before


def test_caps_unknown_to_the_kernel_are_skipped():
    top = CAPABILITIES["CAP_BPF"]  # a kernel that stops at CAP_BPF (5.8)
    caps = {"bounding": ["CAP_CHECKPOINT_RESTORE", "CAP_KILL"], "effective": ["CAP_KILL"]}
    assert _mask(caps["bounding"], top) == 1 << CAPABILITIES["CAP_KILL"]
    assert unknown_to_kernel(caps, top) == ["bounding: CAP_CHECKPOINT_RESTORE"]
    assert unknown_to_kernel(caps, CAPABILITIES["CAP_CHECKPOINT_RESTORE"]) == []
