"""A small TAP 13 reader for the runtime-tools validation programs' output.

Only top-level lines count: the programs embed the TAP stream of `runtimetest` (run inside the
container) as an indented YAML block, and its lines must not be read as the outer results.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#\s*(.*))?$")
_POINT = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(.*))?$")


@dataclass
class TestPoint:
    """One `ok`/`not ok` line."""

    ok: bool
    number: int | None
    description: str
    directive: str = ""
    line: str = ""

    @property
    def skipped(self) -> bool:
        return self.directive.upper().startswith("SKIP")

    @property
    def todo(self) -> bool:
        return self.directive.upper().startswith("TODO")


@dataclass
class TapStream:
    """A parsed TAP stream: plan, test points and bail-out."""

    planned: int | None = None
    plan_directive: str = ""
    points: list[TestPoint] = field(default_factory=list)
    bail_out: str | None = None
    orphan_blocks: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[TestPoint]:
        return [p for p in self.points if not p.ok and not p.todo]

    @property
    def all_skipped(self) -> bool:
        """True for `1..0 # SKIP ...` or a stream where every point is a SKIP."""
        if self.planned == 0:
            return self.plan_directive.upper().startswith("SKIP")
        return bool(self.points) and all(p.skipped for p in self.points)

    @property
    def orphan_errors(self) -> list[str]:
        """`error` values of YAML blocks before any test point: the lifecycle programs
        (prestart, hooks, ...) report a failed check that way, with no `not ok` line."""
        errors = []
        for block in self.orphan_blocks:
            try:
                doc = json.loads(block)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("error"):
                errors.append(str(doc["error"]))
        return errors

    @property
    def plan_ok(self) -> bool:
        return self.planned is not None and self.planned == len(self.points)


def parse_all(text: str) -> list[TapStream]:
    """Split on `TAP version` lines (some programs print one stream per sub-test) and parse
    each; text before the first header, if any, is a stream of its own."""
    chunks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.startswith("TAP version") and any(ln.strip() for ln in chunks[-1]):
            chunks.append([])
        chunks[-1].append(line)
    return [parse("\n".join(c)) for c in chunks if any(ln.strip() for ln in c)]


def parse(text: str) -> TapStream:
    """Parse the top-level lines of a TAP stream; indented YAML blocks are kept only when no
    test point precedes them (see orphan_errors)."""
    stream = TapStream()
    block: list[str] | None = None
    for line in text.splitlines():
        if block is not None:
            if line.strip() == "...":
                if not stream.points:
                    stream.orphan_blocks.append("\n".join(block))
                block = None
            else:
                block.append(line)
            continue
        if line.strip() == "---" and line[0].isspace():
            block = []
            continue
        if not line or line[0].isspace():
            continue
        if line.startswith("Bail out!"):
            stream.bail_out = line[len("Bail out!"):].strip()
            continue
        plan = _PLAN.match(line)
        if plan:
            stream.planned = int(plan.group(1))
            stream.plan_directive = (plan.group(2) or "").strip()
            continue
        point = _POINT.match(line)
        if point:
            stream.points.append(TestPoint(
                ok=point.group(1) == "ok",
                number=int(point.group(2)) if point.group(2) else None,
                description=point.group(3).strip(),
                directive=(point.group(4) or "").strip(),
                line=line))
    return stream
