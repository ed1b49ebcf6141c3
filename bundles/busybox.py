"""Build a busybox bundle (rootfs + config.json) without runc or a registry.

The rootfs is Debian's static busybox with one symlink per applet, plus the usual top-level
directories and /etc files. It is built once per busybox binary into a cache directory and
copied for each bundle (containers may write to their rootfs).

    python3 bundles/busybox.py DEST [--terminal] [-- ARGS...]
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ociruntime.config.defaults import default_spec  # noqa: E402

BUSYBOX = Path("/bin/busybox")
CACHE = Path(os.environ.get("PYRUNC_BUNDLE_CACHE", "/var/tmp"))
DIRS = ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root",
        "home", "var", "run", "mnt"]
ETC = {
    "passwd": "root:x:0:0:root:/root:/bin/sh\n"
              "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "group": "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    "hostname": "pyrunc\n",
    "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
}


def _busybox_digest() -> str:
    if not BUSYBOX.exists():
        raise SystemExit(f"{BUSYBOX} is missing: apt-get install busybox-static")
    return hashlib.sha256(BUSYBOX.read_bytes()).hexdigest()[:16]


def _build_rootfs(dest: Path) -> None:
    for d in DIRS:
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chmod(dest / "root", 0o700)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        link = dest / applet
        if link.name == "busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    for name, text in ETC.items():
        (dest / "etc" / name).write_text(text)


def cached_rootfs() -> Path:
    """The shared, read-only template rootfs (built on first use, atomically)."""
    target = CACHE / f"pyrunc-busybox-rootfs-{_busybox_digest()}"
    if target.is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pyrunc-rootfs-", dir=CACHE))
    try:
        _build_rootfs(tmp)
        os.chmod(tmp, 0o755)
        try:
            tmp.rename(target)
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def write_config(bundle: Path, config: dict) -> None:
    """Write config.json into the bundle."""
    (Path(bundle) / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def build(dest: Path, *, args: list[str] | None = None, terminal: bool = False,
          config_overrides: Callable[[dict], None] | None = None) -> Path:
    """Make `dest/rootfs` (a copy of the busybox template) and `dest/config.json`."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rootfs = dest / "rootfs"
    if not rootfs.exists():
        subprocess.run(["cp", "-a", str(cached_rootfs()), str(rootfs)], check=True)
    config = default_spec(terminal=terminal)
    config["process"]["args"] = list(args) if args else ["sh"]
    if config_overrides is not None:
        config_overrides(config)
    write_config(dest, config)
    return dest


def main(argv: list[str]) -> int:
    """CLI: DEST [--terminal] [-- ARGS...]."""
    args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, args = argv[:i], argv[i + 1:]
    terminal = "--terminal" in argv
    positional = [a for a in argv if a != "--terminal"]
    if len(positional) != 1:
        print("usage: busybox.py DEST [--terminal] [-- ARGS...]", file=sys.stderr)
        return 2
    path = build(Path(positional[0]), args=args or None, terminal=terminal)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
