"""A private containerd (Debian's package) whose runc v2 shim drives pyrunc."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.oci_image import IMAGE_NAME, build_image_archive
from tests.clients.podman import Podman, private_podman

REPO = Path(__file__).resolve().parents[2]
PYRUNC = str(REPO / ".venv" / "bin" / "pyrunc")
# the runtime the client suites drive: pyrunc, or e.g. /usr/sbin/runc to prove the scenarios
RUNTIME = os.environ.get("PYRUNC_CLIENT_RUNTIME", PYRUNC)
NAMESPACE = "pyrunc-test"
# the runc v2 shim's default --root (ctr sets no --runc-root): <RUNC_ROOT>/<namespace>/<id>
RUNC_ROOT = Path("/run/containerd/runc") / NAMESPACE


class Ctr:
    """`ctr` against our private daemon."""

    def __init__(self, address: str) -> None:
        self.address = address

    def __call__(self, *args: str, timeout: float = 60, check: bool = False,
                 **kw: object) -> subprocess.CompletedProcess[str]:
        cmd = ["ctr", "--address", self.address, "-n", NAMESPACE, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd}: {proc.returncode}: {proc.stderr}")
        return proc

    def run(self, name: str, *cmd: str, flags: tuple[str, ...] = (), runtime: str = RUNTIME,
            **kw: object) -> subprocess.CompletedProcess[str]:
        return self("run", "--runc-binary", runtime, *flags, IMAGE_NAME, name, *cmd, **kw)

    def argv(self, *args: str) -> list[str]:
        """The full `ctr` command line (for drive_pty)."""
        return ["ctr", "--address", self.address, "-n", NAMESPACE, *args]

    def wait_stopped(self, name: str, timeout: float = 5) -> str:
        """Poll `ctr task ls` until the task is STOPPED; return its row."""
        deadline = time.monotonic() + timeout
        row = ""
        while time.monotonic() < deadline:
            rows = [r for r in self("task", "ls").stdout.splitlines() if r.split()[:1] == [name]]
            row = rows[0] if rows else ""
            if "STOPPED" in row:
                break
            time.sleep(0.05)
        return row

    def cleanup(self, name: str) -> None:
        self("task", "kill", "-s", "SIGKILL", name)
        for _ in range(50):
            if self("task", "delete", name).returncode != 0:
                break
            time.sleep(0.05)
        self("container", "delete", name)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctr]:
    """Start containerd with its own root, state and socket; stop it by pid at the end."""
    if not shutil.which("containerd") or not shutil.which("ctr"):
        pytest.fail("containerd is not installed (apt-get install containerd; .ci/setup does)")
    base = Path("/tmp") / f"pyrunc-ctrd-{uuid.uuid4().hex[:6]}"
    base.mkdir()
    config = base / "config.toml"
    config.write_text(f"""version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{base}/containerd.sock"
[ttrpc]
  address = "{base}/containerd.ttrpc.sock"
""")
    log = open(base / "containerd.log", "w")
    daemon = subprocess.Popen(["containerd", "--config", str(config)], stdout=log,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    ctr = Ctr(str(base / "containerd.sock"))
    try:
        for _ in range(100):
            if ctr("version").returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("containerd did not start: " + (base / "containerd.log").read_text())
        image = build_image_archive(base / "image.tar")
        ctr("image", "import", str(image), check=True)
        yield ctr
    finally:
        for line in ctr("container", "ls", "-q").stdout.split():
            ctr.cleanup(line)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        for mp in sorted((line.split()[4] for line in open("/proc/self/mountinfo")
                          if str(base) in line.split()[4]), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        try:
            RUNC_ROOT.rmdir()  # the shim's runtime root for our namespace, once empty
        except OSError:
            pass


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    """podman with private storage/config in /tmp, the test image loaded, driving RUNTIME."""
    if not shutil.which("podman") or not shutil.which("conmon"):
        pytest.fail("podman is not installed (apt-get install podman; .ci/setup does)")
    with private_podman(Path("/tmp") / f"pyrunc-podman-{uuid.uuid4().hex[:6]}", RUNTIME) as pm:
        yield pm


@pytest.fixture
def name() -> str:
    return f"c{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _not_root_guard() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
