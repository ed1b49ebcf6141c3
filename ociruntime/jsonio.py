"""JSON without importing the `json` package (it pulls in `re` and `enum`, ~10 ms).

Decoding and compact encoding use CPython's `_json` accelerator directly, with the same
semantics as json.loads / json.dumps(ensure_ascii=False); `dumps_pretty` renders the indented
form runc prints for `state`.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _DecoderContext:
    """The attributes `_json.make_scanner` reads from a json.JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict = {}


_scan = _json.make_scanner(_DecoderContext())


def loads(data: str | bytes) -> object:
    """Parse one JSON document; ValueError (with position) on anything else."""
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8")
    start = 0
    while start < len(data) and data[start] in _WHITESPACE:
        start += 1
    try:
        obj, end = _scan(data, start)
    except (StopIteration, ValueError, SystemError):
        return _slow_loads(data)
    while end < len(data) and data[end] in _WHITESPACE:
        end += 1
    if end != len(data):
        return _slow_loads(data)
    return obj


def clone(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, scalars), without importing `copy` (its
    weakref and copyreg imports cost ~3 ms on exec's path)."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def _slow_loads(data: str) -> object:
    """The error path: the `json` package gives the precise message (a ValueError)."""
    import json

    return json.loads(data)


def _default(obj: object) -> object:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encode = _json.make_encoder(
    None, _default, _json.encode_basestring, None, ":", ",", False, False, True
)


def dumps(obj: object) -> str:
    """Compact JSON (no spaces), UTF-8 left as is."""
    return "".join(_encode(obj, 0))


def dumps_pretty(obj: object, indent: str = "  ", level: int = 0) -> str:
    """Indented JSON like Go's json.MarshalIndent (what runc prints for `state`)."""
    pad = indent * (level + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{_json.encode_basestring(str(k))}: {dumps_pretty(v, indent, level + 1)}"
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent * level + "}"
    if isinstance(obj, list):
        if not obj:
            return "[]"
        items = [pad + dumps_pretty(v, indent, level + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + indent * level + "]"
    return dumps(obj)
