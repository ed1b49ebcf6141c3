"""The `list` table, laid out like Go's text/tabwriter as runc configures it."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any



_MIN_WIDTH = 12
_PADDING = 3


def render_list(states: list[dict[str, Any]]) -> str:
    """ID PID STATUS BUNDLE CREATED OWNER, columns padded to the widest cell + 3 (min 12)."""
    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    for s in states:
        rows.append([s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]])
    widths = [max(_MIN_WIDTH, max(len(r[i]) for r in rows) + _PADDING) for i in range(5)]
    lines = []
    for r in rows:
        cells = [r[i].ljust(widths[i]) for i in range(5)] + [r[5]]
        lines.append("".join(cells) + "\n")
    return "".join(lines)
