"""What the container's process sees, checked from inside (pyrunc and runc alike)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.integration import cgroupfs

pytestmark = pytest.mark.privileged


def run_in(runtime, make_bundle, cid, script: str, overrides=None) -> str:
    """Run `sh -c script` in a fresh container; return stdout (exit status must be 0)."""
    bundle = make_bundle(["sh", "-c", script], overrides)
    proc = runtime.run("run", "-b", str(bundle), cid)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout


def test_pid_one_in_new_pid_namespace(runtime, make_bundle, cid):
    out = run_in(runtime, make_bundle, cid, "echo $$; cut -d' ' -f1 /proc/1/stat")
    assert out.split() == ["1", "1"]


@pytest.mark.parametrize("ns", ["pid", "mnt", "net", "ipc", "uts"])
def test_namespaces_differ_from_host(runtime, make_bundle, cid, ns):
    inside = run_in(runtime, make_bundle, cid, f"readlink /proc/self/ns/{ns}").strip()
    assert inside.startswith(f"{ns}:[")
    assert inside != os.readlink(f"/proc/self/ns/{ns}")


def test_hostname(runtime, make_bundle, cid):
    def name(c):
        c["hostname"] = "box-under-test"
    assert run_in(runtime, make_bundle, cid, "hostname", name).strip() == "box-under-test"


def test_readonly_root(runtime, make_bundle, cid):
    out = run_in(runtime, make_bundle, cid, "touch /newfile 2>&1; echo rc=$?")
    assert "Read-only file system" in out and "rc=1" in out


def test_masked_and_readonly_paths(runtime, make_bundle, cid):
    out = run_in(runtime, make_bundle, cid,
                 "wc -c < /proc/keys; ls /sys/firmware | wc -l; "
                 "(echo 1 > /proc/sys/kernel/panic) 2>/dev/null; echo rc=$?")
    lines = out.split()
    assert lines[0] == "0", "/proc/keys must read empty (bound to /dev/null)"
    assert lines[1] == "0", "/sys/firmware must be an empty tmpfs"
    assert "rc=1" in out, "/proc/sys must be read-only"


def test_default_mounts_and_flags(runtime, make_bundle, cid):
    out = run_in(runtime, make_bundle, cid, "cat /proc/self/mountinfo")
    opts = {}
    for line in out.splitlines():
        fields = line.split()
        opts[fields[4]] = (fields[5], line.split(" - ")[1].split()[0])
    assert opts["/proc"][1] == "proc"
    assert opts["/dev"][1] == "tmpfs" and "nosuid" in opts["/dev"][0]
    assert opts["/dev/pts"][1] == "devpts"
    assert opts["/dev/shm"][1] == "tmpfs"
    assert {"nosuid", "nodev", "noexec"} <= set(opts["/dev/shm"][0].split(","))
    assert opts["/dev/mqueue"][1] == "mqueue"
    assert opts["/sys"][1] == "sysfs" and "ro" in opts["/sys"][0].split(",")
    assert "ro" in opts["/"][0].split(",")


def test_default_devices_and_links(runtime, make_bundle, cid):
    out = run_in(runtime, make_bundle, cid,
                 "for d in null zero full random urandom tty; do "
                 "stat -c '%n %t:%T %a' /dev/$d; done; "
                 "for l in ptmx fd stdin; do readlink /dev/$l; done")
    lines = out.splitlines()
    expected = {"/dev/null": "1:3", "/dev/zero": "1:5", "/dev/full": "1:7",
                "/dev/random": "1:8", "/dev/urandom": "1:9", "/dev/tty": "5:0"}
    seen = {line.split()[0]: line.split()[1] for line in lines[:6]}
    assert seen == expected
    assert all(line.split()[2] == "666" for line in lines[:6])
    assert lines[6:9] == ["pts/ptmx", "/proc/self/fd", "/proc/self/fd/0"]


def test_user_groups_env_cwd_umask(runtime, make_bundle, cid):
    def user(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 2000],
                                "umask": 0o027}
        c["process"]["env"].append("GREETING=hello world")
        c["process"]["cwd"] = "/tmp"
    out = run_in(runtime, make_bundle, cid, "id -u; id -g; id -G; echo $GREETING; pwd; umask",
                 user)
    lines = out.splitlines()
    assert lines[0] == "1000" and lines[1] == "1000"
    assert set(lines[2].split()) == {"1000", "5", "2000"}
    assert lines[3] == "hello world"
    assert lines[4] == "/tmp"
    assert lines[5] == "0027"


def test_rlimits_nnp_capabilities(runtime, make_bundle, cid):
    def limits(c):
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}]
    out = run_in(runtime, make_bundle, cid,
                 "ulimit -n; ulimit -Hn; grep -E 'NoNewPrivs|CapEff|CapBnd|CapPrm' "
                 "/proc/self/status", limits)
    lines = out.splitlines()
    assert lines[0] == "512" and lines[1] == "1024"
    status = dict(line.split(":\t") for line in lines[2:])
    assert status["NoNewPrivs"] == "1"
    # CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10)
    mask = f"{(1 << 29) | (1 << 5) | (1 << 10):016x}"
    assert status["CapEff"] == mask and status["CapBnd"] == mask and status["CapPrm"] == mask


def test_loopback_up_in_new_netns(runtime, make_bundle, cid):
    out = run_in(runtime, make_bundle, cid, "cat /sys/class/net/lo/flags; ls /sys/class/net")
    flags = int(out.split()[0], 16)
    assert flags & 1, "lo must be up"
    assert out.split()[1:] == ["lo"]


def test_container_cgroup(runtime, make_bundle, cid):
    def path(c):
        c["linux"]["cgroupsPath"] = f"/pyrunc-test/{cid}"
    try:
        out = run_in(runtime, make_bundle, cid, "cat /proc/self/cgroup", path)
        memory = cgroupfs.hierarchy("memory")  # v1 ":memory:" line, v2 the one "0::" line
        lines = [line for line in out.splitlines()
                 if line.split(":")[1] == ("memory" if memory.version == 1 else "")]
        assert lines and lines[0].endswith(f"/pyrunc-test/{cid}")
        assert not os.path.exists(f"{memory.mountpoint}/pyrunc-test/{cid}")
    finally:
        # runc leaves the parents it created; pyrunc removes them (checked by the leak check)
        if runtime.name == "runc":
            for top in os.listdir("/sys/fs/cgroup"):
                try:
                    os.rmdir(f"/sys/fs/cgroup/{top}/pyrunc-test")
                except OSError:
                    pass


def test_sysctl(runtime, make_bundle, cid):
    def sysctl(c):
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"}
    out = run_in(runtime, make_bundle, cid,
                 "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax", sysctl)
    assert out.split() == ["1", "123456789"]


def test_bind_mounts_tmpfs_and_file(runtime, make_bundle, cid, tmp_path):
    host_rw = tmp_path / "rw"
    host_ro = tmp_path / "ro"
    host_rw.mkdir()
    host_ro.mkdir()
    (host_ro / "data").write_text("from the host\n")
    host_file = tmp_path / "single"
    host_file.write_text("one file\n")

    def mounts(c):
        c["mounts"] += [
            {"destination": "/mnt/rw", "type": "bind", "source": str(host_rw),
             "options": ["rbind", "rw"]},
            {"destination": "/mnt/ro", "type": "bind", "source": str(host_ro),
             "options": ["bind", "ro"]},
            {"destination": "/mnt/scratch", "type": "tmpfs", "source": "tmpfs",
             "options": ["size=1m", "nosuid"]},
            {"destination": "/etc/single", "type": "bind", "source": str(host_file),
             "options": ["bind", "ro"]},
        ]
    out = run_in(runtime, make_bundle, cid,
                 "echo written > /mnt/rw/new; cat /mnt/ro/data; "
                 "touch /mnt/ro/x 2>/dev/null || echo ro-refused; cat /etc/single; "
                 "df -k /mnt/scratch | tail -1", mounts)
    assert (host_rw / "new").read_text() == "written\n"
    assert "from the host" in out and "ro-refused" in out and "one file" in out
    assert out.splitlines()[-1].split()[1] == "1024"


def test_linux_devices(runtime, make_bundle, cid):
    def devices(c):
        c["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                                  "fileMode": 0o640, "uid": 0, "gid": 0}]
    out = run_in(runtime, make_bundle, cid, "stat -c '%t:%T %a %F' /dev/fuse", devices)
    assert out.split()[:2] == ["a:e5", "640"]


def test_join_network_namespace_by_path(runtime, make_bundle, cid, tmp_path):
    ns_file = tmp_path / "netns"
    ns_file.touch()
    subprocess.run(["unshare", f"--net={ns_file}", "true"], check=True)
    try:
        ns_path = str(ns_file)

        def join(c):
            for ns in c["linux"]["namespaces"]:
                if ns["type"] == "network":
                    ns["path"] = ns_path
        out = run_in(runtime, make_bundle, cid, "readlink /proc/self/ns/net", join)
        assert out.strip() == f"net:[{os.stat(ns_path).st_ino}]"
    finally:
        subprocess.run(["umount", str(ns_file)], check=True)


def test_hostname_set_in_uts_namespace_joined_by_path(runtime, make_bundle, cid, tmp_path):
    """runtime-tools linux_ns_path: hostname with a uts namespace joined by path is set there."""
    ns_file = tmp_path / "utsns"
    ns_file.touch()
    subprocess.run(["unshare", f"--uts={ns_file}", "hostname", "before-join"], check=True)
    host_name = os.uname().nodename
    try:
        def join(c):
            c["hostname"] = "joined-uts"
            for ns in c["linux"]["namespaces"]:
                if ns["type"] == "uts":
                    ns["path"] = str(ns_file)
        out = run_in(runtime, make_bundle, cid, "readlink /proc/self/ns/uts; hostname", join)
        assert out.split() == [f"uts:[{os.stat(ns_file).st_ino}]", "joined-uts"]
        seen = subprocess.run(["nsenter", f"--uts={ns_file}", "hostname"], check=True,
                              capture_output=True, text=True).stdout.strip()
        assert seen == "joined-uts"
        assert os.uname().nodename == host_name
    finally:
        subprocess.run(["umount", str(ns_file)], check=True)


def test_user_namespace_mappings(runtime, make_bundle, cid):
    def userns(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle = make_bundle(["sh", "-c", "cat /proc/self/uid_map; id -u"], userns)
    path = bundle
    while str(path) != "/":  # the mapped root must be able to reach the rootfs
        os.chmod(path, os.stat(path).st_mode | 0o011)
        path = path.parent
    proc = runtime.run("run", "-b", str(bundle), cid)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["0", "100000", "65536"]
    assert lines[1] == "0"


def test_no_pivot(runtime, make_bundle, cid):
    bundle = make_bundle(["sh", "-c", "ls /; cat /proc/self/mountinfo | head -1"])
    proc = runtime.run("run", "--no-pivot", "-b", str(bundle), cid)
    assert proc.returncode == 0, proc.stderr
    assert "bin" in proc.stdout.split()


def test_only_stdio_reaches_the_container(runtime, make_bundle, cid):
    out = run_in(runtime, make_bundle, cid, "ls /proc/self/fd")
    assert sorted(out.split()) == ["0", "1", "2", "3"]  # 3 is ls's own directory fd


def test_host_dev_null_stdio_becomes_the_containers(runtime, make_bundle, cid, tmp_path):
    """conmon hands a read-only host /dev/null as stdin to `create`: like runc, the container
    gets its own /dev/null there, read-write (found by podman: `echo x >&0` failed, EBADF)."""
    bundle = make_bundle(["sh", "-c", "echo into-null >&0 && echo wrote; "
                          "grep mnt_id /proc/self/fdinfo/0 | tr -dc 0-9; echo; "
                          "grep ' /dev ' /proc/self/mountinfo | cut -d' ' -f1"])
    out = tmp_path / "out"
    null = os.open("/dev/null", os.O_RDONLY)
    try:
        with open(out, "w") as sink:  # files, not pipes: the container keeps them open
            create = subprocess.run([*runtime.argv, "--root", str(runtime.root), "create", "-b",
                                     str(bundle), cid], stdin=null, stdout=sink, stderr=sink,
                                    timeout=20)
    finally:
        os.close(null)
    assert create.returncode == 0, out.read_text()
    runtime.run("start", cid, check=True)
    deadline = time.monotonic() + 10
    while runtime.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.02)
    wrote, fd0_mount, dev_mount = out.read_text().split()
    assert wrote == "wrote"
    assert fd0_mount == dev_mount, "stdin is the container's /dev/null, not the host's"


def test_preserve_fds(runtime, make_bundle, cid, tmp_path):
    extra = tmp_path / "passed"
    extra.write_text("through fd 3\n")
    bundle = make_bundle(["sh", "-c", "cat <&3"])
    wrapper = ["sh", "-c", 'exec 3<"$0"; exec "$@"', str(extra), *runtime.argv, "--root",
               str(runtime.root), "run", "--preserve-fds", "1", "-b", str(bundle), cid]
    proc = subprocess.run(wrapper, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "through fd 3\n"


def test_overlay_root_mount(runtime, make_bundle, cid, tmp_path):
    lower, upper, work = tmp_path / "lower", tmp_path / "upper", tmp_path / "work"
    for d in (lower, upper, work):
        d.mkdir()
    (lower / "from-lower").write_text("lower\n")

    def overlay(c):
        c["mounts"].append({"destination": "/ov", "type": "overlay", "source": "overlay",
                            "options": [f"lowerdir={lower}", f"upperdir={upper}",
                                        f"workdir={work}"]})
    out = run_in(runtime, make_bundle, cid, "cat /ov/from-lower; echo new > /ov/created",
                 overlay)
    assert out == "lower\n"
    assert (upper / "created").read_text() == "new\n"
    assert not (lower / "created").exists()


@pytest.mark.parametrize("propagation", ["rprivate", "rslave"])
def test_rootfs_propagation(runtime, make_bundle, cid, propagation):
    def prop(c):
        c["linux"]["rootfsPropagation"] = propagation
    out = run_in(runtime, make_bundle, cid, "awk '$5 == \"/\"' /proc/self/mountinfo", prop)
    fields = out.split(" - ")[0].split()[6:]
    assert not any(f.startswith("shared:") for f in fields), out



def test_console_for_terminal_init(runtime, make_bundle, cid, tmp_path):
    from tests.integration.test_exec import ConsoleSocket

    console = ConsoleSocket(str(tmp_path / "c.sock"))
    try:
        bundle = make_bundle(["sh", "-c", "stat -c '%t:%T' /dev/console; readlink /proc/self/fd/0;"
                              " sleep 5"], terminal=True)
        runtime.run("create", "--console-socket", console.path, "-b", str(bundle), cid,
                    check=True)
        runtime.run("start", cid, check=True)
        out = console.read_until(b"/dev/pts/0")
        assert b"88:0" in out and b"/dev/pts/0" in out
    finally:
        console.close()
