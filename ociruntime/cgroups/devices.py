"""`linux.resources.devices`: the device cgroup allow/deny list.

The config's rules come first, then runc's default allow list (mknod of any node, the standard
/dev nodes, ptys and tun), so a container behaves as it does under runc. On cgroup v1 the rules
are written in order to devices.deny / devices.allow. On cgroup v2 they become an eBPF
BPF_PROG_TYPE_CGROUP_DEVICE program, assembled here instruction by instruction and attached to
the container's cgroup with bpf(2).
"""

from __future__ import annotations

import os
import struct

from ociruntime.cgroups.resources import _v1_dir, write
from ociruntime.errors import RuntimeFailure
from ociruntime.linux.kernel import address, call

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ociruntime.cgroups.manager import CgroupManager

DEFAULT_ALLOWED: list[dict[str, Any]] = [
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    *({"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"}
      for ma, mi in ((1, 3), (1, 8), (1, 7), (5, 0), (1, 5), (1, 9), (136, -1), (5, 2),
                     (10, 200))),
]


def effective_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The config's rules followed by runc's default allow list."""
    return [*rules, *DEFAULT_ALLOWED]


def rule_line(rule: dict[str, Any]) -> str:
    """`c 1:3 rwm` for one rule (no major/minor = `*`); `a` for every device."""
    kind = rule.get("type") or "a"
    if kind == "a":
        return "a"
    major, minor = rule.get("major"), rule.get("minor")
    majs = "*" if major is None or major < 0 else str(major)
    mins = "*" if minor is None or minor < 0 else str(minor)
    return f"{kind} {majs}:{mins} {rule.get('access') or 'rwm'}"


def apply_device_rules(manager: CgroupManager, rules: list[dict[str, Any]]) -> None:
    """v1: write the rules in order; v2: attach an eBPF program built from them."""
    full = effective_rules(rules)
    v1 = _v1_dir(manager, "devices")
    if v1 is not None:
        for rule in full:
            write(v1, "devices.allow" if rule.get("allow") else "devices.deny", rule_line(rule))
        return
    v2 = manager.paths.get("")
    if v2:
        attach_program(v2, assemble(full))


# --- eBPF ----------------------------------------------------------------------------------

_TYPES = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, READ, WRITE


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


_LDX_W = 0x61      # r_dst = *(u32 *)(r_src + off)
_AND_K = 0x54      # w_dst &= imm
_RSH_K = 0x74      # w_dst >>= imm
_MOV_X = 0xBC      # w_dst = w_src
_MOV64_K = 0xB7    # r_dst = imm
_JNE_K = 0x55      # if r_dst != imm: pc += off
_JEQ_K = 0x15      # if r_dst == imm: pc += off
_EXIT = 0x95


def _access_mask(access: str) -> int:
    mask = 0
    for ch in access or "rwm":
        mask |= _ACCESS.get(ch, 0)
    return mask


def assemble(rules: list[dict[str, Any]]) -> bytes:
    """A program that answers like the v1 list: the last matching rule decides.

    r2 = device type, r3 = requested access, r4 = major, r5 = minor (from the context).
    Rules are checked from the last to the first; an allow rule matches when every requested
    access bit is allowed, a deny rule when any requested bit is denied. No match: allow
    (a new v1 cgroup starts with its parent's "a *:* rwm").
    """
    prog = [
        _insn(_LDX_W, 2, 1, 0), _insn(_AND_K, 2, imm=0xFFFF),
        _insn(_LDX_W, 3, 1, 0), _insn(_RSH_K, 3, imm=16),
        _insn(_LDX_W, 4, 1, 4), _insn(_LDX_W, 5, 1, 8),
    ]
    for rule in reversed(rules):
        block: list[bytes] = []
        kind = rule.get("type") or "a"
        allow = bool(rule.get("allow"))
        if kind != "a":
            block.append(("jne", 2, _TYPES[kind]))
            if rule.get("major") is not None and rule["major"] >= 0:
                block.append(("jne", 4, int(rule["major"])))
            if rule.get("minor") is not None and rule["minor"] >= 0:
                block.append(("jne", 5, int(rule["minor"])))
            mask = _access_mask(rule.get("access") or "rwm")
        else:
            mask = 7
        block.append(("mov", 6, 3))
        block.append(("and", 6, (~mask & 0xFFFFFFFF) if allow else mask))
        block.append(("jne", 6, 0) if allow else ("jeq", 6, 0))
        block.append(("ret", 0, 1 if allow else 0))
        size = len(block) + 1  # the return takes two instructions
        code = []
        for i, (op, reg, value) in enumerate(block):
            to_end = size - i - 1
            if op == "jne":
                code.append(_insn(_JNE_K, reg, off=to_end, imm=value))
            elif op == "jeq":
                code.append(_insn(_JEQ_K, reg, off=to_end, imm=value))
            elif op == "mov":
                code.append(_insn(_MOV_X, reg, value))
            elif op == "and":
                code.append(_insn(_AND_K, reg, imm=_signed32(value)))
            else:
                code.append(_insn(_MOV64_K, 0, imm=value))
                code.append(_insn(_EXIT))
        prog.extend(code)
    prog.extend([_insn(_MOV64_K, 0, imm=1), _insn(_EXIT)])
    return b"".join(prog)


_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8
_BPF_PROG_TYPE_CGROUP_DEVICE = 15
_BPF_CGROUP_DEVICE = 6
_BPF_F_ALLOW_MULTI = 2


def attach_program(cgroup_dir: str, program: bytes) -> None:
    """Load `program` and attach it to the cgroup (the program lives as long as the cgroup)."""
    license_ = b"Apache"
    log = bytearray(65536)
    attr = struct.pack("<IIQQIIQ", _BPF_PROG_TYPE_CGROUP_DEVICE, len(program) // 8,
                       address(program), address(license_), 1, len(log), address(log))
    attr += bytes(128 - len(attr))
    try:
        prog_fd = call("bpf", _BPF_PROG_LOAD, attr, 128)
    except OSError as e:
        text = bytes(log).split(b"\0", 1)[0].decode(errors="replace")
        raise RuntimeFailure(f"linux.resources.devices: loading the eBPF device filter: "
                             f"{os.strerror(e.errno)}: {text[:200]}") from None
    try:
        dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            attach = struct.pack("<IIII", dir_fd, prog_fd, _BPF_CGROUP_DEVICE,
                                 _BPF_F_ALLOW_MULTI)
            attach += bytes(128 - len(attach))
            try:
                call("bpf", _BPF_PROG_ATTACH, attach, 128)
            except OSError as e:
                raise RuntimeFailure(f"linux.resources.devices: attaching the eBPF device "
                                     f"filter to {cgroup_dir}: {os.strerror(e.errno)}"
                                     ) from None
        finally:
            os.close(dir_fd)
    finally:
        os.close(prog_fd)


def _signed32(value: int) -> int:
    """A 32-bit pattern as the signed immediate a BPF instruction holds."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value
