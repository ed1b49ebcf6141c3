"""How the container side gets into its cgroups (ociruntime/cgroups/join.py): born in the v2
cgroup (clone3 CLONE_INTO_CGROUP, or a migration where the kernel refuses that), entering the
v1 ones by writing 0 to `tasks`; and, for whole containers, that the init and an exec'd
process are in every hierarchy whichever way create placed them (itself, or by pid with a
user namespace). Real cgroups, checked in /proc/<pid>/cgroup."""

from __future__ import annotations

import errno
import os
import uuid

import pytest

from ociruntime.cgroups import join
from ociruntime.cgroups.layout import discover
from ociruntime.cgroups.manager import CgroupManager
from tests.helpers import in_child

pytestmark = pytest.mark.privileged

HIERARCHIES = discover()
V1 = [h for h in HIERARCHIES if h.version == 1]
V2 = [h for h in HIERARCHIES if h.version == 2]


def cgroup_lines(text: str) -> dict[str, str]:
    """/proc/PID/cgroup as {hierarchy key ("" for v2, "cpu,cpuacct", "name=systemd"): path}."""
    lines = {}
    for line in text.splitlines():
        _, key, path = line.split(":", 2)
        lines[key] = path
    return lines


@pytest.fixture
def cgroups():
    """A fresh cgroup in every hierarchy of this host, made and removed by CgroupManager (which
    fills in a v1 cpuset's cpus and mems); yields its name and paths."""
    name = f"pyrunc-join-{uuid.uuid4().hex[:8]}"
    manager = CgroupManager({("" if h.version == 2 else h.key): os.path.join(h.mountpoint, name)
                             for h in HIERARCHIES})
    manager.create()
    yield name, manager.paths
    manager.destroy()


def born_child_cgroup(paths: dict[str, str]) -> str:
    """What a child of fork_into(paths) sees in /proc/self/cgroup first thing (it must already
    be in the v2 cgroup, whichever way it got there)."""
    def first_look() -> str:
        with open("/proc/self/cgroup") as f:
            return f.read()
    return in_child(first_look, fork=lambda: join.fork_into(paths))


@pytest.mark.skipif(not V2, reason="no cgroup v2 hierarchy on this host")
@pytest.mark.parametrize("clone3", [True, False], ids=["clone3", "migration"])
def test_fork_into_puts_the_child_in_the_v2_cgroup(cgroups, monkeypatch, clone3):
    name, paths = cgroups
    if not clone3:  # as with an extension that is not built: os.fork, then a migration
        monkeypatch.setattr(join, "fork_into_cgroup", None)
    else:  # this kernel has clone3 into a cgroup: the fallback must not be what placed it
        def no_fallback(v2: str) -> int:
            raise AssertionError("fork_into fell back to a migration")
        monkeypatch.setattr(join, "_fork_then_move", no_fallback)
    seen = cgroup_lines(in_child(lambda: born_child_cgroup(paths)))
    assert seen[""] == f"/{name}"
    # only v2 here: the v1 hierarchies are entered separately (join_v1_self)
    assert all(not path.endswith(name) for key, path in seen.items() if key)


@pytest.mark.skipif(not V2, reason="no cgroup v2 hierarchy on this host")
def test_fork_into_cgroup_refused_makes_no_child(tmp_path):
    from ociruntime.linux import _kernel

    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        def attempt() -> str:
            try:
                _kernel.fork_into_cgroup(fd)  # not a cgroup2 directory
            except OSError as e:
                try:
                    os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return f"refused {errno.errorcode[e.errno]}, no child"
                return "refused, but a child exists"
            return "not refused"
        assert in_child(attempt) == "refused EBADF, no child"
    finally:
        os.close(fd)


@pytest.mark.skipif(not V1, reason="no cgroup v1 hierarchy on this host (pure cgroup v2)")
def test_join_v1_self_enters_every_v1_hierarchy(cgroups):
    name, paths = cgroups

    def enter() -> str:
        join.join_v1_self(paths)
        with open("/proc/self/cgroup") as f:
            return f.read()
    seen = cgroup_lines(in_child(enter))
    for h in V1:
        assert seen[h.key] == f"/{name}", h.key
    if V2:
        assert seen[""] != f"/{name}"  # v2 is fork_into's


def test_join_v1_self_names_the_file_it_could_not_write(tmp_path):
    with pytest.raises(Exception, match=f"to {tmp_path}/gone/cgroup.procs: No such file"):
        join.join_v1_self({"pids": str(tmp_path / "gone")})


def test_join_v1_self_writes_its_pid_where_tasks_is_not_writable(tmp_path):
    """A delegation that made only cgroup.procs writable (plain files stand in here)."""
    (tmp_path / "cgroup.procs").write_text("")
    assert in_child(lambda: join.join_v1_self({"pids": str(tmp_path)}) or os.getpid()) \
        == (tmp_path / "cgroup.procs").read_text()


@pytest.mark.skipif(not V2, reason="no cgroup v2 hierarchy on this host")
def test_fork_into_a_refusal_is_the_error_not_a_migration(tmp_path):
    """clone3 refusing (here EBADF: not a cgroup2 directory) fails fork_into; only a kernel
    that cannot do it (ENOSYS, E2BIG, EINVAL, EPERM) makes it fork and migrate instead."""
    def attempt() -> str:
        try:
            join.fork_into({"": str(tmp_path)})
        except Exception as e:  # noqa: BLE001 - reported to the test
            try:
                os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return f"{e}; no child"
            return f"{e}; a child exists"
        return "forked"
    assert in_child(attempt) == f"fork into {tmp_path}: Bad file descriptor; no child"


@pytest.mark.parametrize("userns", [False, True], ids=["itself", "moved-by-pid"])
def test_init_and_exec_are_in_every_hierarchy(runtime, make_bundle, cid, userns):
    def config(c):
        if userns:
            c["linux"]["namespaces"].append({"type": "user"})
            c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
            c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle = make_bundle(["sleep", "60"], config)
    path = bundle
    while userns and str(path) != "/":  # the mapped root must be able to reach the rootfs
        os.chmod(path, os.stat(path).st_mode | 0o011)
        path = path.parent
    runtime.run("create", "-b", str(bundle), cid, check=True)
    try:
        init = int(runtime.state(cid)["pid"])
        with open(f"/proc/{init}/cgroup") as f:
            init_lines = cgroup_lines(f.read())
        exec_lines = cgroup_lines(runtime.run("exec", cid, "cat", "/proc/self/cgroup",
                                              check=True).stdout)
    finally:
        runtime.run("delete", "--force", cid)
    assert set(init_lines) == {("" if h.version == 2 else h.key) for h in HIERARCHIES}
    for key, path in init_lines.items():
        assert path.endswith(f"/{cid}"), (key, path)
    assert exec_lines == init_lines


@pytest.mark.skipif(not V2, reason="no cgroup v2 hierarchy on this host")
def test_fork_into_with_another_thread_running_migrates_instead(cgroups, monkeypatch):
    """clone3 would give the child glibc's record of a thread it lacks: with a thread running
    fork_into takes os.fork and a migration, and the child still starts in the cgroup."""
    name, paths = cgroups

    def with_a_thread() -> str:
        import _thread
        import threading

        used = []
        monkeypatch.setattr(join, "fork_into_cgroup", lambda fd: used.append(fd) or 1 / 0)
        release = threading.Event()
        started = threading.Event()

        def wait() -> None:
            started.set()
            release.wait()
        _thread.start_new_thread(wait, ())
        started.wait()
        try:
            text = born_child_cgroup(paths)
        finally:
            release.set()
        return "clone3 used" if used else text
    seen = in_child(with_a_thread)
    assert seen != "clone3 used"
    assert cgroup_lines(seen)[""] == f"/{name}"


@pytest.mark.parametrize(("new", "join_", "itself"), [
    (["pid", "network", "ipc", "uts", "mount"], {}, True),  # runc's default config
    (["mount"], {"network": "/proc/1/ns/net", "pid": "/proc/1/ns/pid"}, True),  # a pod member
    (["user", "mount"], {}, False),
    (["mount"], {"user": "/proc/1/ns/user"}, False),
    ([], {"mount": "/proc/1/ns/mnt"}, False),
    (["mount"], {"cgroup": "/proc/1/ns/cgroup"}, False),
])
def test_which_bootstraps_enter_their_cgroups_themselves(new, join_, itself):
    from ociruntime.process.parent import bootstrap_enters_cgroups

    assert bootstrap_enters_cgroups(new, join_) is itself
