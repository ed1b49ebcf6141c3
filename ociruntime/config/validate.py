"""Validate config.json: the schema (spec/config-schema.json) and the rules it cannot express.

The fast path is the checker generated from the schema (`_schema_check`, see
schema_compiler.py). Only when it rejects a document is jsonschema imported: it is the
reference, it gives the error's JSON path and reason, and if it accepts the document after all,
the document is valid.
"""

from __future__ import annotations

from ociruntime.config import _schema_check
from ociruntime.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_MAX_SHOWN = 60


def _schema() -> dict[str, Any]:
    import json
    from importlib import resources
    from pathlib import Path

    try:
        text = (resources.files("ociruntime.schemas") / "config-schema.json").read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        text = (Path(__file__).resolve().parents[2] / "spec" / "config-schema.json").read_text()
    return json.loads(text)


def json_path(parts: object) -> str:
    """`$.a.b[0]` from a jsonschema error's absolute path."""
    out = "$"
    for part in parts:  # type: ignore[attr-defined]
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _describe(error: Any) -> str:
    """A short reason for one jsonschema error."""
    value = error.instance
    shown = repr(value)
    if len(shown) > _MAX_SHOWN:
        shown = shown[:_MAX_SHOWN] + "..."
    keyword = error.validator
    if keyword == "type":
        return f"expected {error.validator_value}, got {type(value).__name__} {shown}"
    if keyword == "enum":
        return f"{shown} is not one of {', '.join(map(str, error.validator_value))}"
    if keyword == "required":
        return error.message.replace("'", "").replace(" is a required property",
                                                      " is required")
    if keyword == "pattern":
        return f"{shown} does not match {error.validator_value}"
    if keyword in ("minimum", "maximum"):
        word = "less" if keyword == "minimum" else "greater"
        return f"{shown} is {word} than the {keyword} {error.validator_value}"
    return error.message[:200]


def _report(doc: object, schema: dict[str, Any], source: str, prefix: str = "$") -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is None:
        return
    path = json_path(error.absolute_path)
    if prefix != "$":
        path = prefix + path[1:]
    raise ConfigError(f"{source}: {path}", _describe(error))


def validate_config(doc: object, source: str = "config.json") -> None:
    """Raise ConfigError (file, JSON path, reason) unless `doc` satisfies our schema."""
    if _schema_check.check(doc):
        return
    _report(doc, _schema(), source)


def validate_process(doc: object, source: str = "process.json") -> None:
    """Validate a runtime-spec Process (exec --process)."""
    if not _schema_check.check_process(doc):
        schema = _schema()
        sub = dict(schema["$defs"]["Process"])
        sub["$defs"] = schema["$defs"]
        _report(doc, sub, source)
    check_process_semantics(doc, source, "$")  # type: ignore[arg-type]


def check_process_semantics(process: dict[str, Any], source: str, base: str) -> None:
    """Rules for a Process beyond the schema."""
    args = process.get("args")
    if not args:
        raise ConfigError(f"{source}: {base}.args", "must name the program to run (non-empty)")
    cwd = process.get("cwd", "")
    if not cwd.startswith("/"):
        raise ConfigError(f"{source}: {base}.cwd", f"must be an absolute path, got {cwd!r}")
    seen: set[str] = set()
    for i, rl in enumerate(process.get("rlimits") or []):
        if rl["type"] in seen:
            raise ConfigError(f"{source}: {base}.rlimits[{i}]", f"duplicate {rl['type']}")
        seen.add(rl["type"])
        if rl["soft"] > rl["hard"]:
            raise ConfigError(f"{source}: {base}.rlimits[{i}]",
                              f"soft limit {rl['soft']} is above the hard limit {rl['hard']}")
    from ociruntime.config.known import CAPABILITIES, RLIMITS

    for i, rl in enumerate(process.get("rlimits") or []):
        if rl["type"] not in RLIMITS:
            raise ConfigError(f"{source}: {base}.rlimits[{i}].type",
                              f"unknown rlimit {rl['type']!r}")
    for kind, names in (process.get("capabilities") or {}).items():
        for i, name in enumerate(names or []):
            if name not in CAPABILITIES:
                raise ConfigError(f"{source}: {base}.capabilities.{kind}[{i}]",
                                  f"unknown capability {name!r}")


def _check_shared_mount_namespace(doc: dict[str, Any], linux: dict[str, Any],
                                  kinds: dict[str, int], source: str) -> None:
    """Without a mount namespace the container shares the runtime's and is entered by chroot:
    what would change mounts outside the rootfs, or cannot be done from a user namespace, is
    refused rather than done to the host or silently dropped."""
    why = "needs a mount namespace (the container would share the runtime's)"
    if (doc.get("root") or {}).get("readonly"):
        raise ConfigError(f"{source}: $.root.readonly", why)
    for key in ("maskedPaths", "readonlyPaths", "rootfsPropagation"):
        if linux.get(key):
            raise ConfigError(f"{source}: $.linux.{key}", why)
    if "user" in kinds:
        raise ConfigError(f"{source}: $.linux.namespaces[{kinds['user']}]",
                          "a user namespace needs a mount namespace too: from it the runtime's "
                          "mount namespace cannot be mounted in or chrooted from")


def check_semantics(doc: dict[str, Any], source: str = "config.json") -> None:
    """Rules the schema cannot express; ConfigError with the JSON path on the first broken."""
    process = doc.get("process")
    if isinstance(process, dict):
        check_process_semantics(process, source, "$.process")
    linux = doc.get("linux") or {}
    kinds: dict[str, int] = {}
    for i, ns in enumerate(linux.get("namespaces") or []):
        if ns["type"] in kinds:
            raise ConfigError(f"{source}: $.linux.namespaces[{i}]",
                              f"duplicate namespace type {ns['type']!r}")
        kinds[ns["type"]] = i
    new = {ns["type"] for ns in linux.get("namespaces") or [] if not ns.get("path")}
    # A joined uts namespace (path set) is the container's own too: the name is set in it.
    if doc.get("hostname") and "uts" not in kinds:
        raise ConfigError(f"{source}: $.hostname",
                          "setting the hostname needs a uts namespace (new or joined)")
    if doc.get("domainname") and "uts" not in kinds:
        raise ConfigError(f"{source}: $.domainname",
                          "setting the domainname needs a uts namespace (new or joined)")
    if "mount" not in kinds:
        _check_shared_mount_namespace(doc, linux, kinds, source)
    for kind in ("uidMappings", "gidMappings"):
        if linux.get(kind) and "user" not in new:
            raise ConfigError(f"{source}: $.linux.{kind}", "needs a new user namespace")
    if "user" in new and not (linux.get("uidMappings") and linux.get("gidMappings")):
        raise ConfigError(f"{source}: $.linux.namespaces[{kinds['user']}]",
                          "a new user namespace needs uidMappings and gidMappings")
    if linux.get("timeOffsets") and "time" not in new:
        raise ConfigError(f"{source}: $.linux.timeOffsets", "needs a new time namespace")
    for key in linux.get("sysctl") or {}:
        if not key or ".." in key or key.startswith(("/", ".")):
            raise ConfigError(f"{source}: $.linux.sysctl", f"invalid key {key!r}")
