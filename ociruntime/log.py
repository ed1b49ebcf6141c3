"""Runtime logging like runc's: `--log FILE`, `--log-format text|json`, `--debug`.

Errors always go to stderr as one line; with --log they are also written to the log file
(JSON lines ``{"level":"error","msg":...,"time":...}`` in json format, logfmt-style text
otherwise), because containerd reads the last error line from that file.
"""

from __future__ import annotations

import os
import sys
import time

from ociruntime.jsonio import dumps

_config = {"path": "", "format": "text", "debug": False}
PROG = "pyrunc"  # the name error lines start with (pyrunc-bundle sets its own)


def configure(path: str | None, fmt: str, debug: bool) -> None:
    _config["path"] = path or ""
    _config["format"] = fmt
    _config["debug"] = debug


def _timestamp() -> str:
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def _format(level: str, msg: str) -> str:
    if _config["format"] == "json":
        doc = {"level": level, "msg": msg, "time": _timestamp()}
        return dumps(doc) + "\n"
    return f'time="{_timestamp()}" level={level} msg={dumps(msg)}\n'


def _write_file(line: str) -> bool:
    path = _config["path"]
    if not path:
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return False
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return True


def error(msg: str) -> None:
    """Report a failure: one line on stderr and one error line in the log file."""
    msg = " ".join(msg.splitlines())
    _write_file(_format("error", msg))
    sys.stderr.write(f"{PROG}: {msg}\n")
    sys.stderr.flush()


def warning(msg: str) -> None:
    """A warning goes to the log file only (stderr must stay clean for state/ps)."""
    _write_file(_format("warning", msg))


def debug(msg: str) -> None:
    """Debug lines only with --debug, to the log file (or stderr without one)."""
    if not _config["debug"]:
        return
    line = _format("debug", msg)
    if not _write_file(line):
        sys.stderr.write(line)
