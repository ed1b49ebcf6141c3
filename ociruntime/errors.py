"""Error types that carry what failed, where and why; the CLI turns them into one line."""

from __future__ import annotations


class RuntimeFailure(Exception):
    """Any failure pyrunc reports to its caller: one line, exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(RuntimeFailure):
    """config.json is unreadable, not JSON, or violates the schema or a semantic rule.

    `where` is the file and JSON path (e.g. ``config.json: $.process.args``).
    """

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"invalid config: {where}: {why}")
        self.where = where
        self.why = why


class ContainerNotFound(RuntimeFailure):
    """No container with this ID exists under the state root (runc's phrase)."""

    def __init__(self, container_id: str) -> None:
        super().__init__("container does not exist")
        self.container_id = container_id


class ContainerNotRunning(RuntimeFailure):
    """A signal or operation needs a live process (runc's phrase)."""

    def __init__(self) -> None:
        super().__init__("container not running")


class SyscallError(RuntimeFailure):
    """A kernel call failed: names the call, the path it acted on and errno's text."""

    def __init__(self, call: str, path: str, errno_: int) -> None:
        import os

        super().__init__(f"{call} {path}: {os.strerror(errno_)}")
        self.call = call
        self.path = path
        self.errno = errno_


def describe_error(e: BaseException) -> str:
    """One line for any exception raised on the container side (sent to the parent)."""
    if isinstance(e, RuntimeFailure):
        return str(e)
    if isinstance(e, OSError):
        where = f" {e.filename}" if e.filename else ""
        return f"{e.strerror or e}{where}"
    return f"internal error: {type(e).__name__}: {e}"
