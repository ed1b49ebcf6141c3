"""Run OCI hooks: the container state on stdin, the hook's own args and env, a timeout.

The runner uses fork/execve directly (no subprocess import on the hot path, and it must work
inside the init just before pivot_root). Output is captured and quoted in the error.
"""

from __future__ import annotations

import os
import time

from ociruntime.errors import RuntimeFailure
from ociruntime.jsonio import dumps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


HOOK_KINDS = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)
_OUTPUT_LIMIT = 4096


def hooks_of(config: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The configured hooks of one kind (empty when none)."""
    return list(((config.get("hooks") or {}).get(kind)) or [])


def state_for_hooks(container_id: str, status: str, pid: int, bundle: str,
                    annotations: dict[str, str] | None, oci_version: str) -> bytes:
    """The runtime-spec state document hooks receive on stdin."""
    doc: dict[str, Any] = {
        "ociVersion": oci_version,
        "id": container_id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
    }
    if annotations:
        doc["annotations"] = annotations
    return dumps(doc).encode()


def run_hook(hook: dict[str, Any], state: bytes, kind: str, index: int) -> None:
    """Run one hook to completion; RuntimeFailure naming the hook if it fails or times out."""
    path = hook["path"]
    args = list(hook.get("args") or [path])
    env = {}
    for item in hook.get("env") or []:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    timeout = hook.get("timeout")
    in_r, in_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(in_r, 0)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            os.execve(path, args, env)
        except OSError as e:
            os.write(2, f"exec {path}: {e.strerror}".encode())
        os._exit(127)
    os.close(in_r)
    os.close(out_w)
    try:
        try:
            os.write(in_w, state)
        except BrokenPipeError:
            pass
        os.close(in_w)
        output, status = _collect(pid, out_r, timeout)
    finally:
        os.close(out_r)
    where = f"{kind}[{index}] {path}"
    if status is None:
        raise RuntimeFailure(f"hook {where}: timed out after {timeout}s")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        text = output.decode(errors="replace").strip().replace("\n", " ")
        detail = f": {text[:_OUTPUT_LIMIT]}" if text else ""
        how = f"exit status {code}" if code > 0 else f"killed by signal {-code}"
        raise RuntimeFailure(f"hook {where}: {how}{detail}")


def _collect(pid: int, fd: int, timeout: float | None) -> tuple[bytes, int | None]:
    """Read the hook's output until it exits; kill it at the deadline (status None)."""
    import select

    deadline = None if not timeout else time.monotonic() + float(timeout)
    chunks: list[bytes] = []
    size = 0
    open_ = True
    while True:
        if open_:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], wait)
            if ready:
                data = os.read(fd, 65536)
                if data:
                    if size < _OUTPUT_LIMIT:
                        chunks.append(data)
                        size += len(data)
                    continue
                open_ = False
        waited, status = os.waitpid(pid, os.WNOHANG if deadline is not None else 0)
        if waited:
            return b"".join(chunks), status
        if deadline is not None and time.monotonic() >= deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return b"".join(chunks), None
        time.sleep(0.002)


def run_hooks(config: dict[str, Any], kind: str, state: bytes) -> None:
    """Run every hook of `kind` in order; the first failure stops and raises."""
    for index, hook in enumerate(hooks_of(config, kind)):
        run_hook(hook, state, kind, index)
