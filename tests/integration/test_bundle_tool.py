"""pyrunc-bundle (bundles/tool): images built here (busybox layers, a whiteout and an opaque
directory in an upper layer) imported, run on an overlay root through pyrunc, with volumes,
limits, bridge networking between two containers, logs, commit, save and rm."""

from __future__ import annotations

import copy
import io
import ipaddress
import json
import os
import stat
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from bundles.tool.bridge import veth_names
from bundles.tool.layout import (
    blob_name,
    image_blobs,
    name_annotations,
    sha256,
    write_layout,
)
from tests.clients.oci_image import IMAGE_CONFIG, busybox_layer

pytestmark = pytest.mark.privileged

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / ".venv" / "bin" / "pyrunc-bundle"
PYRUNC = REPO / ".venv" / "bin" / "pyrunc"
IMAGE = "localhost/test/layers:v1"


class Tool:
    """`pyrunc-bundle --root ROOT ...` with a private store."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, *args: str, check: bool = True, log: Path | None = None
                 ) -> subprocess.CompletedProcess[str]:
        if not TOOL.exists():
            pytest.fail(f"{TOOL} is missing: run .ci/setup (it installs the console script)")
        cmd = [str(TOOL), "--root", str(self.root), *(["--log", str(log)] if log else []),
               *args]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            done = subprocess.run(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                  timeout=60, check=False)
            out.seek(0)
            err.seek(0)
            proc = subprocess.CompletedProcess(cmd, done.returncode, out.read().decode(),
                                               err.read().decode())
        if check:
            assert proc.returncode == 0, f"{args}: {proc.stderr}{proc.stdout}"
        return proc

    def status(self, name: str) -> str:
        done = subprocess.run([str(PYRUNC), "--root", str(self.root / "run"), "state", name],
                              capture_output=True, text=True, check=False)
        return json.loads(done.stdout)["status"] if done.returncode == 0 else "gone"

    def wait_stopped(self, name: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while self.status(name) not in ("stopped", "gone"):
            assert time.monotonic() < deadline, f"{name} still {self.status(name)}"
            time.sleep(0.05)

    def run_to_end(self, *args: str) -> str:
        """`run --name N ARGS`, wait for the end; returns its log."""
        name = f"r{uuid.uuid4().hex[:8]}"
        self("run", "--name", name, *args)
        self.wait_stopped(name)
        return self("logs", name).stdout

    def inspect(self, name: str) -> dict:
        return json.loads(self("inspect", name).stdout)[0]

    def leftovers(self) -> list[str]:
        """What a clean store must not hold once every container is removed."""
        left = [f"runtime state {p.name}" for p in (self.root / "run").glob("*")]
        left += [f"bundle {p.name}" for p in (self.root / "containers").glob("*")]
        left += [f"temporary {p.name}" for p in (self.root / "tmp").glob("*")]
        left += [f"leases {p.name}" for p in (self.root / "net").glob("*.json")]
        return left


@pytest.fixture
def make_tool(tmp_path: Path):
    """make_tool() -> a Tool with a store of its own. Afterwards every container is removed
    (rm -f), and rm must have left nothing: no runtime state, bundle, temporary file, lease."""
    made: list[Tool] = []

    def factory() -> Tool:
        made.append(Tool(tmp_path / f"store{len(made)}"))
        return made[-1]
    yield factory
    for t in made:
        if (t.root / "containers").is_dir():
            for name in t("ps", "-q").stdout.split():
                t("rm", "-f", name, check=False)
        assert not t.leftovers()


@pytest.fixture
def tool(make_tool) -> Tool:
    return make_tool()


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644,
          uid: int = 0, gid: int = 0, link: str = "", xattrs: dict[str, str] | None = None
          ) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.linkname = kind, mode, uid, gid, link
    info.size, info.mtime = len(data), 1_700_000_000
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return info, data


def tar_layer(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


D = tarfile.DIRTYPE
LAYER2 = tar_layer([entry("opt", D, mode=0o755), entry("opt/a", data=b"a\n"),
                    entry("opt/b", data=b"b\n"), entry("data", D, mode=0o755),
                    entry("data/keep", data=b"keep\n"), entry("data/gone", data=b"gone\n")])
LAYER3 = tar_layer([
    entry("data", D, mode=0o755), entry("data/.wh.gone"),  # deletes a lower file
    entry("opt", D, mode=0o755), entry("opt/.wh..wh..opq"), entry("opt/new", data=b"new\n"),
    entry("etc/motd", data=b"motd\n", mode=0o640, uid=1234, gid=5678,
          xattrs={"user.pyrunc": "hello"}),
    entry("etc/motd.link", tarfile.LNKTYPE, link="etc/motd"),
    entry("etc/alink", tarfile.SYMTYPE, link="/etc/passwd", mode=0o777),
])
CONFIG = {**IMAGE_CONFIG, "config": {
    "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo $GREETING from $(pwd) as $(id -u)"],
    "Env": IMAGE_CONFIG["config"]["Env"] + ["GREETING=hi"], "WorkingDir": "/opt"}}


@pytest.fixture(scope="module")
def layers() -> list[bytes]:
    return [busybox_layer(), LAYER2, LAYER3]


def write_image(dest: Path, layers: list[bytes], config: dict = CONFIG, name: str = IMAGE,
                archive: bool = True, compress: bool = False) -> Path:
    manifest, blobs = image_blobs(config, layers, compress)
    return write_layout(dest, blobs, [dict(manifest, annotations=name_annotations(name))],
                        archive)


def docker_save(dest: Path, layers: list[bytes], config: dict, tag: str) -> Path:
    """A `docker save` archive (the pre-25 layout: manifest.json, <id>.json, <id>/layer.tar)."""
    config = dict(config, rootfs={"type": "layers", "diff_ids": [sha256(x) for x in layers]})
    raw = json.dumps(config).encode()
    files = {f"{sha256(raw)[7:]}.json": raw}
    for x in layers:
        files[f"{sha256(x)[7:19]}/layer.tar"] = x
    files["manifest.json"] = json.dumps([{
        "Config": f"{sha256(raw)[7:]}.json", "RepoTags": [tag],
        "Layers": [f"{sha256(x)[7:19]}/layer.tar" for x in layers]}]).encode()
    with tarfile.open(dest, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


def layer_dir(tool: Tool, layer: bytes) -> Path:
    return tool.root / "layers" / sha256(layer)[7:]


def tree_digest(root: Path) -> list[tuple]:
    """Names, types, sizes, modes and contents of a tree (to prove it did not change)."""
    out = []
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if stat.S_ISREG(st.st_mode) else b""
        out.append((str(path.relative_to(root)), st.st_mode, st.st_size, st.st_uid, data))
    return out


def test_import_oci_archive_keeps_layers_whiteouts_and_metadata(tool, tmp_path, layers):
    tool("import", str(write_image(tmp_path / "img.tar", layers, compress=True)))
    listed = tool("images").stdout.splitlines()
    assert listed[0].split()[:3] == ["NAME", "ID", "LAYERS"]
    assert listed[1].split()[0] == IMAGE and listed[1].split()[2] == "3"

    top = layer_dir(tool, LAYER3)
    wh = (top / "data" / "gone").lstat()
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0, "OCI whiteout -> 0/0 char device"
    assert os.getxattr(top / "opt", "trusted.overlay.opaque") == b"y"
    assert not (top / "opt" / ".wh..wh..opq").exists()
    motd = (top / "etc" / "motd").lstat()
    assert (motd.st_uid, motd.st_gid, stat.S_IMODE(motd.st_mode)) == (1234, 5678, 0o640)
    assert motd.st_nlink == 2 and (top / "etc" / "motd.link").lstat().st_ino == motd.st_ino
    assert os.getxattr(top / "etc" / "motd", "user.pyrunc") == b"hello"
    assert os.readlink(top / "etc" / "alink") == "/etc/passwd"

    out = tool.run_to_end(IMAGE, "ls /data /opt; stat -c '%u:%g %a %h' /etc/motd; "
                          "head -1 /etc/alink")
    assert out.split() == ["/data:", "keep", "/opt:", "new", "1234:5678", "640", "2",
                           "root:x:0:0:root:/root:/bin/sh"]


def test_image_config_gives_entrypoint_cmd_env_workdir_user(tool, tmp_path, layers):
    tool("import", str(write_image(tmp_path / "img", layers, archive=False)))
    assert tool.run_to_end(IMAGE) == "hi from /opt as 0\n"
    assert tool.run_to_end("-e", "GREETING=yo", "-w", "/", IMAGE, "echo $GREETING $(pwd)"
                           ) == "yo /\n"
    as_nobody = {**CONFIG, "config": {**CONFIG["config"], "User": "nobody"}}
    tool("import", "--name", "as-nobody", str(write_image(tmp_path / "u.tar", layers,
                                                           as_nobody)))
    assert tool.run_to_end("as-nobody", "id -u; id -g") == "65534\n65534\n"
    assert tool.run_to_end("-u", "0:5", "as-nobody", "id -u; id -g") == "0\n5\n"


def test_import_docker_save_archive(tool, tmp_path, layers):
    tool("import", str(docker_save(tmp_path / "d.tar", layers, CONFIG, "docker/img:1")))
    assert tool("images", "-q").stdout == "docker/img:1\n"
    assert tool.run_to_end("docker/img:1", "ls /opt") == "new\n"


def rewrite_config(layout_dir: Path, change) -> None:
    """Apply `change` to the image config of an OCI layout directory, then rewrite the
    config, manifest and index so that every digest matches again."""
    index = json.loads((layout_dir / "index.json").read_text())
    manifest = json.loads((layout_dir / blob_name(index["manifests"][0]["digest"])).read_text())
    config = json.loads((layout_dir / blob_name(manifest["config"]["digest"])).read_text())
    change(config)
    raw = json.dumps(config).encode()
    (layout_dir / blob_name(sha256(raw))).write_bytes(raw)
    manifest["config"].update(digest=sha256(raw), size=len(raw))
    raw = json.dumps(manifest).encode()
    (layout_dir / blob_name(sha256(raw))).write_bytes(raw)
    index["manifests"][0].update(digest=sha256(raw), size=len(raw))
    (layout_dir / "index.json").write_text(json.dumps(index))


@pytest.mark.parametrize("damage", ["blob", "diff_id"])
def test_import_checks_digests_and_leaves_nothing(tool, tmp_path, layers, damage):
    src = write_image(tmp_path / "img", layers, archive=False)
    if damage == "blob":
        blob = src / blob_name(sha256(LAYER3))
        blob.write_bytes(blob.read_bytes().replace(b"motd\n", b"MOTD\n"))
        expected = "digest mismatch"
    else:  # the config claims the top layer holds what the middle one holds
        rewrite_config(src, lambda c: c["rootfs"]["diff_ids"].__setitem__(2, sha256(LAYER2)))
        expected = "diff ID mismatch"
    log = tmp_path / "err.log"
    proc = tool("import", str(src), check=False, log=log)
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and expected in proc.stderr, proc.stderr
    assert json.loads(log.read_text().splitlines()[-1])["level"] == "error"
    assert tool("images", "-q").stdout == ""
    for sub in ("layers", "tmp", "blobs/sha256"):
        assert not list((tool.root / sub).iterdir()), f"{sub} not cleaned up"


ESCAPES = {
    "dotdot": [entry("../escaped", data=b"x")],
    "absolute": [entry("/tmp/escaped", data=b"x")],
    "through-absolute-symlink": [entry("link", tarfile.SYMTYPE, link="{outside}"),
                                 entry("link/escaped", data=b"x")],
    "through-relative-symlink": [entry("link", tarfile.SYMTYPE, link="../../../../../.."),
                                 entry("link/escaped", data=b"x")],
    "hardlink-outside": [entry("h", tarfile.LNKTYPE, link="{outside}/victim")],
    "hardlink-dotdot": [entry("h", tarfile.LNKTYPE, link="../victim")],
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_import_rejects_entries_escaping_the_layer(tool, tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("victim\n")
    entries = []
    for info, data in ESCAPES[case]:
        info = copy.copy(info)  # (TarInfo.replace is newer than Debian's Python 3.11.2)
        info.linkname = info.linkname.format(outside=outside)
        entries.append((info, data))
    proc = tool("import", str(write_image(tmp_path / "bad.tar", [tar_layer(entries)])),
                check=False)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert any(w in proc.stderr for w in ("traversal", "absolute", "symlink", "hard link"))
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "victim\n"
    assert not list((tool.root / "layers").iterdir())


def test_copy_on_write_root(tool, tmp_path, layers):
    tool("import", str(write_image(tmp_path / "img.tar", layers)))
    lower = {x: tree_digest(layer_dir(tool, x)) for x in layers[1:]}
    tool("run", "--name", "cow", IMAGE,
         "echo new > /newfile && rm /data/keep && echo more >> /opt/new && "
         "rm -r /opt && mkdir /opt && touch /opt/only")
    tool.wait_stopped("cow")
    assert tool("logs", "cow").stdout == ""
    upper = tool.root / "containers" / "cow" / "upper"
    assert (upper / "newfile").read_text() == "new\n", "a new file lands in upper"
    wh = (upper / "data" / "keep").lstat()
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0, "deleting a lower file whites it out"
    assert os.getxattr(upper / "opt", "trusted.overlay.opaque") == b"y"
    assert sorted(p.name for p in (upper / "opt").iterdir()) == ["only"]
    assert {x: tree_digest(layer_dir(tool, x)) for x in layers[1:]} == lower, "lower changed"
    assert (tool.root / "containers" / "cow" / "rootfs" / "newfile").exists(), "merged root"
    tool("start", "cow")  # runs again on the same upper: /data/keep is still deleted
    tool.wait_stopped("cow")
    assert tool("logs", "cow").stdout == "rm: can't remove '/data/keep': No such file or " \
        "directory\n"


def test_volumes_survive_rm(tool, tmp_path, layers):
    tool("import", str(write_image(tmp_path / "img.tar", layers)))
    vol, ro = tmp_path / "vols" / "data", tmp_path / "ro"
    ro.mkdir()
    (ro / "in").write_text("read me\n")
    tool("run", "--name", "v", "-v", f"{vol}:/vol", "-v", f"{ro}:/ro:ro", IMAGE,
         "echo kept > /vol/file; cat /ro/in; echo x > /ro/new || echo ro-refused; sleep 30")
    assert vol.is_dir(), "the host side of a volume is made when missing"
    # a volume also reachable through the container's root on the host (as if it had
    # propagated there): rm must unmount it before deleting the bundle
    rootfs = tool.root / "containers" / "v" / "rootfs"
    subprocess.run(["mount", "--bind", str(vol), str(rootfs / "vol")], check=True)
    for _ in range(100):
        if "ro-refused" in tool("logs", "v").stdout:
            break
        time.sleep(0.05)
    assert tool("logs", "v").stdout == \
        "read me\n/bin/sh: can't create /ro/new: Read-only file system\nro-refused\n"
    proc = tool("rm", "v", check=False)
    assert proc.returncode == 1 and "is running" in proc.stderr
    tool("rm", "-f", "v")
    assert (vol / "file").read_text() == "kept\n"
    assert sorted(p.name for p in ro.iterdir()) == ["in"]
    assert not (tool.root / "containers" / "v").exists()


def test_limits_hostname_and_host_network(tool, tmp_path, layers):
    tool("import", str(write_image(tmp_path / "img.tar", layers)))
    out = tool.run_to_end(
        "--memory", "48m", "--cpus", "0.5", "--cpuset", "0", "--pids", "30",
        "--hostname", "box", IMAGE,
        "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes cpu/cpu.cfs_quota_us "
        "cpu/cpu.cfs_period_us cpuset/cpuset.cpus pids/pids.max; hostname; ls /sys/class/net")
    assert out.split() == [str(48 << 20), "50000", "100000", "0", "30", "box", "lo"]
    assert "eth0" in tool.run_to_end("--net", "host", IMAGE, "ls /sys/class/net").split()


@pytest.fixture
def bridge_name():
    """A bridge name of this test's own; deleted afterwards if the tool left it."""
    name = f"pbt{uuid.uuid4().hex[:8]}"
    yield name
    if os.path.exists(f"/sys/class/net/{name}"):
        subprocess.run(["ip", "link", "del", name], check=False)
        pytest.fail(f"bridge {name} left behind")


def test_bridge_network_between_two_containers(bridge_name, tool, tmp_path, layers):
    # bridge_name first: its check runs after `tool` removed the containers
    tool("import", str(write_image(tmp_path / "img.tar", layers)))
    subnet = ipaddress.IPv4Network(f"10.{uuid.uuid4().int % 200 + 20}.{os.getpid() % 250}.0/24")
    net = ["--net", "bridge", "--bridge", bridge_name, "--subnet", str(subnet)]
    tool("run", "--name", "server", *net, IMAGE,
         "ip -4 -o addr show eth0; ip route; nc -l -p 7000; echo server-done")
    ip = tool.inspect("server")["address"]
    assert ipaddress.IPv4Address(ip) in subnet
    tool("run", "--name", "client", *net, "--cap-add", "NET_RAW", IMAGE,
         f"ping -c 1 -W 3 {ip} >/dev/null && echo ping-ok; for i in $(seq 100); do "
         f"echo hello-over-bridge | nc {ip} 7000 2>/dev/null && break; sleep 0.1; done")
    tool.wait_stopped("client")
    tool.wait_stopped("server")
    assert tool("logs", "client").stdout == "ping-ok\n"
    lines = tool("logs", "server").stdout.splitlines()
    assert f"inet {ip}/24" in lines[0]
    assert lines[1].split() == ["default", "via", str(subnet.network_address + 1), "dev", "eth0"]
    assert lines[-2:] == ["hello-over-bridge", "server-done"]
    assert os.path.exists(f"/sys/class/net/{bridge_name}")
    addresses = {tool.inspect(n)["address"] for n in ("server", "client")}
    assert len(addresses) == 2, "each container has its own address"
    # the runtime's delete runs the poststop hook: the lease goes (the veth died with the
    # namespace), the bridge stays for the other container
    leases = tool.root / "net" / f"{bridge_name}.json"
    subprocess.run([str(PYRUNC), "--root", str(tool.root / "run"), "delete", "server"],
                   check=True)
    assert [v["container"] for v in json.loads(leases.read_text())["leases"].values()] == \
        ["client"]
    assert os.path.exists(f"/sys/class/net/{bridge_name}")
    veths = [veth_names(tool.root / "net", n)[0] for n in ("server", "client")]
    tool("rm", "server", "client")
    assert not os.path.exists(f"/sys/class/net/{bridge_name}"), "the tool's bridge is removed"
    assert not [v for v in veths if os.path.exists(f"/sys/class/net/{v}")]


def test_commit_save_and_run_the_new_image(tool, make_tool, tmp_path, layers):
    tool("import", str(write_image(tmp_path / "img.tar", layers)))
    tool("run", "--name", "base", IMAGE,
         "echo committed > /etc/added; rm /opt/new; rm -r /data; mkdir /data; "
         "echo fresh > /data/only")
    tool.wait_stopped("base")
    assert tool("commit", "base", "localhost/test/committed").stdout == \
        "localhost/test/committed:latest\n"
    rows = {r.split()[0]: r.split() for r in tool("images").stdout.splitlines()[1:]}
    assert rows["localhost/test/committed:latest"][2] == "4"

    blobs = tool.root / "blobs" / "sha256"
    index = json.loads((tool.root / "index.json").read_text())["manifests"]
    manifest = next(m for m in index if m["annotations"]["io.containerd.image.name"]
                    == "localhost/test/committed:latest")
    top = json.loads((blobs / manifest["digest"][7:]).read_text())["layers"][-1]
    with tarfile.open(blobs / top["digest"][7:]) as tar:
        names = tar.getnames()
    assert {"etc/added", "opt/.wh.new", "data", "data/.wh..wh..opq", "data/only"} <= set(names)
    assert "data/keep" not in names and "data/.wh.keep" not in names

    script = "cat /etc/added /data/*; ls /opt"
    assert tool.run_to_end("localhost/test/committed", script) == "committed\nfresh\n"

    archive = tmp_path / "saved.tar"
    tool("save", "localhost/test/committed", str(archive))
    other = make_tool()
    other("import", str(archive))
    assert other("images", "-q").stdout == "localhost/test/committed:latest\n"
    assert other.run_to_end("localhost/test/committed", script) == "committed\nfresh\n"


def test_rmi_keeps_what_containers_use(tool, tmp_path, layers):
    tool("import", str(write_image(tmp_path / "img.tar", layers)))
    tool("create", "--name", "keeper", IMAGE)
    tool("rmi", IMAGE)
    assert tool("images", "-q").stdout == ""
    assert layer_dir(tool, LAYER3).is_dir(), "a layer a container uses stays"
    tool("start", "keeper")
    tool.wait_stopped("keeper")
    assert tool("logs", "keeper").stdout == "hi from /opt as 0\n"
    tool("rm", "keeper")
    tool("import", str(write_image(tmp_path / "img.tar", layers)))
    tool("rmi", IMAGE)
    assert not list((tool.root / "layers").iterdir())
    assert not list((tool.root / "blobs" / "sha256").iterdir())


def test_bad_input_one_line_error_and_nothing_left(tool, tmp_path, layers):
    tool("import", str(write_image(tmp_path / "img.tar", layers)))
    log = tmp_path / "err.log"
    cases = [
        (["run", "no/such"], "no such image"),
        (["run", "-v", "relative:/x", IMAGE], "must be absolute"),
        (["run", "--memory", "lots", IMAGE], "--memory lots"),
        (["run", "-u", "ghost", "-v", f"{tmp_path}/made/deep:/v", IMAGE], "no passwd 'ghost'"),
        (["run", "--name", "bad/name", IMAGE], "--name"),
        (["run", "--entrypoint", "/no/such/binary", IMAGE], "/no/such/binary"),
        (["logs", "nobody-here"], "no such container"),
        (["import", str(tmp_path / "missing.tar")], "no such file"),
    ]
    for args, text in cases:
        before = log.read_text().count("\n") if log.exists() else 0
        proc = tool(*args, check=False, log=log)
        assert proc.returncode == 1 and proc.stdout == "", (args, proc)
        assert len(proc.stderr.splitlines()) == 1, (args, proc.stderr)
        assert proc.stderr.startswith("pyrunc-bundle: ") and text in proc.stderr, proc.stderr
        lines = log.read_text().splitlines()
        assert len(lines) == before + 1 and json.loads(lines[-1])["level"] == "error"
    assert tool("ps", "-q").stdout == ""
    assert not (tmp_path / "made").exists(), "a volume directory made for a failed run stays"
    assert not tool.leftovers()
