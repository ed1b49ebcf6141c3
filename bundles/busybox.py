"""Build a busybox bundle (rootfs + config.json) without runc, a registry or the network.

The rootfs is Debian's static busybox (package busybox-static) at /bin/busybox with one
symlink per applet (`busybox --list-full`), the usual top-level directories and small /etc
files. It is built once per busybox binary into a cache directory (atomically: built in a
temporary directory, then renamed) and copied for every bundle, because containers may write
to their rootfs. The copy is a real copy of every regular file; symlinks are hard-linked from
the cache when the filesystem allows it (a symlink cannot be written through, and creating
~400 new symlink inodes is most of the cost of a copy), else created anew.

    python3 bundles/busybox.py DEST [--terminal] [-- ARGS...]

    from bundles.busybox import build
    build(tmp_path / "bundle", args=["echo", "hello"])
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ociruntime.config.defaults import default_spec  # noqa: E402

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

BUSYBOX = Path(os.environ.get("PYRUNC_BUSYBOX", "/bin/busybox"))
CACHE = Path(os.environ.get("PYRUNC_BUNDLE_CACHE", "/var/tmp"))
LAYOUT = "1"  # bump when the rootfs layout below changes: the cache name includes it
DIRS = {
    "bin": 0o755, "sbin": 0o755, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
    "etc": 0o755, "proc": 0o755, "sys": 0o755, "dev": 0o755, "tmp": 0o1777, "root": 0o700,
    "home": 0o755, "var": 0o755, "run": 0o755, "mnt": 0o755,
}
ETC = {
    "passwd": "root:x:0:0:root:/root:/bin/sh\n"
              "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "group": "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    "hostname": "pyrunc\n",
    "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
}
INSTALL_HINT = "apt-get install busybox-static"


class BusyboxMissing(RuntimeError):
    """No usable static busybox on this machine."""


_digests: dict[tuple[int, int, int], str] = {}


def _check_static(data: bytes) -> None:
    """Refuse a dynamically linked busybox (Debian's `busybox` package): the rootfs has no libc."""
    if data[:4] != b"\x7fELF":
        raise BusyboxMissing(f"{BUSYBOX} is not an ELF binary: {INSTALL_HINT}")
    is64, end = data[4] == 2, "<" if data[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(end + "Q", data, 32)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 54)
    else:
        phoff, = struct.unpack_from(end + "I", data, 28)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 42)
    for i in range(phnum):
        p_type, = struct.unpack_from(end + "I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            raise BusyboxMissing(
                f"{BUSYBOX} is dynamically linked (Debian's `busybox` package?); "
                f"the bundle needs a static one: {INSTALL_HINT}")


def busybox_digest() -> str:
    """A sha256 prefix of the host's busybox binary (checked to be static)."""
    try:
        st = BUSYBOX.stat()
    except FileNotFoundError:
        raise BusyboxMissing(f"{BUSYBOX} is missing: {INSTALL_HINT}") from None
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _digests:
        data = BUSYBOX.read_bytes()
        _check_static(data)
        _digests[key] = hashlib.sha256(data).hexdigest()[:16]
    return _digests[key]


def _applets() -> list[str]:
    import subprocess

    out = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True,
                         check=True).stdout
    return [a.strip("/") for a in out.split() if a.strip("/")]


def _build_rootfs(dest: Path) -> None:
    for d, mode in DIRS.items():
        (dest / d).mkdir(parents=True, exist_ok=True)
        os.chmod(dest / d, mode)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    os.chmod(dest / "bin" / "busybox", 0o755)
    for applet in _applets():
        link = dest / applet
        if link.name == "busybox" or os.path.lexists(link):
            continue
        link.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    for name, text in ETC.items():
        (dest / "etc" / name).write_text(text)
        os.chmod(dest / "etc" / name, 0o644)
    os.chmod(dest, 0o755)


def _complete(rootfs: Path) -> bool:
    return (rootfs / "bin" / "busybox").is_file() and (rootfs / "etc" / "passwd").is_file()


def cached_rootfs() -> Path:
    """The shared template rootfs (built on first use, atomically). Treat it as read-only:
    copy it (`copy_rootfs`) before a container uses it."""
    target = CACHE / f"pyrunc-busybox-rootfs-{busybox_digest()}-{LAYOUT}"
    if target.is_dir() and _complete(target):
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pyrunc-rootfs-", dir=CACHE))
    try:
        _build_rootfs(tmp)
        if target.is_dir() and not _complete(target):  # damaged by hand: move it aside
            target.rename(tempfile.mktemp(prefix=".pyrunc-rootfs-broken-", dir=CACHE))
        try:
            tmp.rename(target)
        except OSError:  # another process won the race
            if not (target.is_dir() and _complete(target)):
                raise
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def copy_rootfs(dest: Path, template: Path | None = None) -> Path:
    """Copy the template rootfs to `dest` (which must not exist): regular files and
    directories are copied, symlinks hard-linked when possible."""
    src = Path(template) if template is not None else cached_rootfs()
    dest = Path(dest)
    os.mkdir(dest)
    link = True
    stack = [(src, dest)]
    while stack:
        s_dir, d_dir = stack.pop()
        with os.scandir(s_dir) as entries:
            for e in entries:
                s, d = e.path, os.path.join(d_dir, e.name)
                if e.is_symlink():
                    if link:
                        try:
                            os.link(s, d, follow_symlinks=False)
                            continue
                        except OSError:  # other filesystem, protected_hardlinks, ...
                            link = False
                    os.symlink(os.readlink(s), d)
                elif e.is_dir(follow_symlinks=False):
                    os.mkdir(d)
                    stack.append((Path(s), Path(d)))
                else:
                    shutil.copy2(s, d, follow_symlinks=False)
        shutil.copystat(s_dir, d_dir, follow_symlinks=False)
    return dest


def write_config(bundle: Path, config: dict) -> None:
    """Write config.json into the bundle."""
    (Path(bundle) / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def build(dest: Path, *, args: list[str] | None = None, terminal: bool = False,
          config_overrides: Callable[[dict], None] | None = None) -> Path:
    """Make `dest/rootfs` (a copy of the busybox template, kept if it already exists) and
    `dest/config.json` (runc's default spec with `args`, default ["sh"], then
    `config_overrides(config)`). Returns `dest`."""
    dest = Path(dest)
    template = cached_rootfs()  # fails before touching dest when busybox is unusable
    dest.mkdir(parents=True, exist_ok=True)
    rootfs = dest / "rootfs"
    if not rootfs.exists():
        copy_rootfs(rootfs, template)
    config = default_spec(terminal=terminal)
    config["process"]["args"] = list(args) if args is not None else ["sh"]
    if config_overrides is not None:
        config_overrides(config)
    write_config(dest, config)
    return dest


def main(argv: list[str]) -> int:
    """CLI: DEST [--terminal] [-- ARGS...]."""
    args: list[str] | None = None
    if "--" in argv:
        i = argv.index("--")
        argv, args = argv[:i], argv[i + 1:]
    terminal = "--terminal" in argv
    positional = [a for a in argv if a != "--terminal"]
    if len(positional) != 1 or positional[0].startswith("-") or args == []:
        print("usage: python3 bundles/busybox.py DEST [--terminal] [-- ARGS...]",
              file=sys.stderr)
        return 2
    try:
        path = build(Path(positional[0]), args=args, terminal=terminal)
    except BusyboxMissing as e:
        print(f"busybox.py: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
