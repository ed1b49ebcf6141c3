"""A private podman (Debian's 4.3 + conmon): its own storage, config, locks and network dir."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.clients.oci_image import IMAGE_NAME, build_image_archive

# podman picks behaviour by the runtime's file name: only names in runtime_supports_json get
# `--log-format=json --log oci-log` from conmon (and their JSON error lines read back), so
# pyrunc is listed there like runc. Root here lacks CAP_SYS_RESOURCE: podman's default
# nofile/nproc rlimits (1048576) would fail, hence the lowered default_ulimits.
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"
[network]
network_config_dir = "{base}/net"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{base}/events.log"
lock_type = "file"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "pyrunc"]
"""

STORAGE_CONF = """[storage]
driver = "overlay"
runroot = "{base}/runroot"
graphroot = "{base}/root"
"""

BLOB_CACHE = Path("/var/lib/containers")  # containers/image's blob-info cache for root
CGROUP_PARENT = "libpod_parent"  # cgroupfs: containers and conmon (never removed by podman)


def _cgroup_parents() -> list[Path]:
    return [d / CGROUP_PARENT for d in Path("/sys/fs/cgroup").iterdir()
            if (d / CGROUP_PARENT).is_dir()]


def _remove_cgroup_tree(top: Path) -> None:
    """rmdir a cgroup tree bottom-up (a dir with processes stays)."""
    for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                    reverse=True) + [top]:
        try:
            d.rmdir()
        except OSError:
            pass


class Podman:
    """`podman` against a private root, run with a given runtime binary."""

    def __init__(self, base: Path, runtime: str) -> None:
        self.base = base
        self.runtime = runtime
        self.env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                    "HOME": str(base), "CONTAINERS_CONF": str(base / "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": str(base / "storage.conf")}

    def argv(self, *args: str) -> list[str]:
        return ["podman", "--root", f"{self.base}/root", "--runroot", f"{self.base}/runroot",
                "--tmpdir", f"{self.base}/tmp", "--runtime", self.runtime, *args]

    def pty_argv(self, *args: str) -> list[str]:
        """argv() under `env -i` with our environment (drive_pty passes none)."""
        return ["env", "-i", *(f"{k}={v}" for k, v in self.env.items()), *self.argv(*args)]

    def __call__(self, *args: str, timeout: float = 60, check: bool = False,
                 input: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = self.argv(*args)
        # cwd: conmon leaves a file named `oom` in its working directory after an OOM kill
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL,
                              cwd=self.base)
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd}: {proc.returncode}: {proc.stderr}")
        return proc

    def status(self, name: str) -> str:
        return self("inspect", "-f", "{{.State.Status}}", name, check=True).stdout.strip()

    def exit_code(self, name: str) -> int:
        """`podman wait`: the container's exit code once it stopped."""
        return int(self("wait", name, check=True).stdout.strip())

    def conmon_pids(self) -> list[int]:
        """conmon processes serving this podman root (their command lines name it)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"/usr/bin/conmon\0") and str(self.base).encode() in cmdline:
                pids.append(int(entry.name))
        return pids


@contextmanager
def private_podman(base: Path, runtime: str) -> Iterator[Podman]:
    """Config + storage under `base`, the test image loaded; everything removed at the end."""
    base.mkdir()
    (base / "containers.conf").write_text(CONTAINERS_CONF.format(base=base))
    (base / "storage.conf").write_text(STORAGE_CONF.format(base=base))
    had_cache = BLOB_CACHE.exists()
    had_cgroups = bool(_cgroup_parents())
    podman = Podman(base, runtime)
    try:
        archive = build_image_archive(base / "image.tar", IMAGE_NAME)
        podman("load", "-i", str(archive), check=True)
        yield podman
    finally:
        podman("rm", "-af", "-t", "0")
        for pid in podman.conmon_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        mounts = [line.split()[4] for line in open("/proc/self/mountinfo")
                  if line.split()[4].startswith(str(base))]
        for mp in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        if not had_cache:
            shutil.rmtree(BLOB_CACHE, ignore_errors=True)
        if not had_cgroups:
            for top in _cgroup_parents():
                _remove_cgroup_tree(top)
