"""Fixtures for integration tests: runtimes (pyrunc, and runc as the oracle), bundles, and a
leak check around every test."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bundles.busybox import build
from tests.integration import leaks

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 20


def _pyrunc_argv() -> list[str]:
    if os.environ.get("PYRUNC"):
        return [os.environ["PYRUNC"]]
    launcher = REPO / ".venv" / "bin" / "pyrunc"
    if launcher.exists():
        return [str(launcher)]
    found = shutil.which("pyrunc")
    if found:
        return [found]
    return ["python3", str(REPO / "bin" / "pyrunc")]


def _runc_argv() -> list[str] | None:
    path = os.environ.get("RUNC") or shutil.which("runc")
    return [path] if path else None


def _selected() -> list[str]:
    wanted = os.environ.get("PYRUNC_TEST_RUNTIMES", "pyrunc,runc").split(",")
    return [w for w in wanted if w == "pyrunc" or (w == "runc" and _runc_argv())]


class Runtime:
    """One runtime binary with its own private state root."""

    def __init__(self, name: str, argv: list[str], root: Path) -> None:
        self.name = name
        self.argv = argv
        self.root = root

    def __repr__(self) -> str:
        return self.name

    def run(self, *args: str, check: bool = False, timeout: float = TIMEOUT,
            input: str | None = None, env: dict[str, str] | None = None,
            extra_global: list[str] | None = None,
            **kw: object) -> subprocess.CompletedProcess[str]:
        """Run `<runtime> --root ROOT [extra] args...`, capturing text output.

        Output goes through temporary files, not pipes: a detached container inherits the
        caller's stdio and would keep a pipe open for its whole life.
        """
        cmd = [*self.argv, "--root", str(self.root), *(extra_global or []), *args]
        full_env = dict(os.environ, **(env or {}))
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            done = subprocess.run(cmd, stdout=out, stderr=err, timeout=timeout,
                                  input=input.encode() if input is not None else None,
                                  stdin=None if input is not None else subprocess.DEVNULL,
                                  env=full_env, **kw)  # type: ignore[call-overload]
            out.seek(0)
            err.seek(0)
            proc = subprocess.CompletedProcess(cmd, done.returncode,
                                               out.read().decode(errors="replace"),
                                               err.read().decode(errors="replace"))
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def state(self, container_id: str) -> dict:
        """`state ID` parsed."""
        return json.loads(self.run("state", container_id, check=True).stdout)

    def ids(self) -> list[str]:
        """Containers under this runtime's root."""
        out = self.run("list", "-q").stdout
        return [line for line in out.splitlines() if line]

    def delete_all(self) -> None:
        """Stop and delete every container, reaping what we adopted (like a shim would)."""
        ids = self.ids()
        for cid in ids:
            self.run("kill", "--all", cid, "KILL")
        if ids:
            await_adopted_exit()
        for cid in ids:
            self.run("delete", "--force", cid)
            reap_zombies()


def _set_subreaper() -> None:
    """Adopt orphaned container inits, as containerd's shim does, so they get reaped."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)


def reap_zombies() -> None:
    """Collect exited children (container inits reparented to us)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def await_adopted_exit(timeout: float = 3.0) -> None:
    """Reap adopted container processes until none is left (a SIGKILLed process is not gone
    the moment kill returns; an unreaped zombie keeps a v1 cgroup from being removed)."""
    deadline = time.monotonic() + timeout
    while True:
        reap_zombies()
        if not leaks.children() or time.monotonic() > deadline:
            return
        time.sleep(0.01)


@pytest.fixture(scope="session", autouse=True)
def _session_setup() -> None:
    if os.geteuid() == 0:
        _set_subreaper()


@pytest.fixture(params=_selected())
def runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Runtime]:
    """Each runtime under test with its own state root (cleaned afterwards)."""
    name = request.param
    argv = _pyrunc_argv() if name == "pyrunc" else _runc_argv()
    assert argv is not None
    root = tmp_path_factory.mktemp(f"{name}-root")
    rt = Runtime(name, argv, root)
    yield rt
    rt.delete_all()


@pytest.fixture
def pyrunc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """pyrunc alone (for behaviour runc does not have, or pyrunc-specific messages)."""
    rt = Runtime("pyrunc", _pyrunc_argv(), tmp_path_factory.mktemp("pyrunc-root"))
    yield rt
    rt.delete_all()


@pytest.fixture
def make_bundle(tmp_path: Path) -> Callable[..., Path]:
    """make_bundle(args, overrides=None, terminal=False) -> a fresh busybox bundle."""
    def factory(args: list[str] | None = None,
                overrides: Callable[[dict], None] | None = None,
                terminal: bool = False) -> Path:
        dest = tmp_path / f"bundle-{uuid.uuid4().hex[:8]}"
        return build(dest, args=args or ["true"], terminal=terminal, config_overrides=overrides)
    return factory


@pytest.fixture
def cid() -> str:
    """A fresh container ID."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(autouse=True)
def leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves mounts, cgroups, processes, fds or state behind."""
    runtimes = [request.getfixturevalue(name) for name in ("runtime", "pyrunc")
                if name in request.fixturenames]
    reap_zombies()
    before = leaks.Snapshot()
    yield
    for rt in runtimes:
        rt.delete_all()
    roots = [rt.root for rt in runtimes]
    reap_zombies()
    problems = leaks.diff(before, roots)
    if problems:
        leaks.clean_up(before, roots)
        reap_zombies()
        pytest.fail("leak after test: " + "; ".join(problems))
