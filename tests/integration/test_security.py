"""The container process is exactly as privileged as its config says, and cannot get out."""

from __future__ import annotations

import json
import os
import socket
import struct
import threading

import pytest

pytestmark = pytest.mark.privileged


def run_in(rt, make_bundle, cid, script, overrides=None, expect=0):
    proc = rt.run("run", "-b", str(make_bundle(["sh", "-c", script], overrides)), cid)
    assert proc.returncode == expect, proc.stderr + proc.stdout
    return proc.stdout


def status_of(out: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def test_seccomp_errno_kill_and_args(runtime, make_bundle, cid):
    def seccomp(c):
        c["root"]["readonly"] = False
        c["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["unshare"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["not_a_syscall_name"], "action": "SCMP_ACT_ERRNO"},
            ]}
    out = run_in(runtime, make_bundle, cid,
                 "grep -E '^Seccomp' /proc/self/status; mkdir /tmp/d 2>&1; "
                 "unshare -U true 2>&1; echo done", seccomp)
    st = status_of(out)
    assert st["Seccomp"] == "2" and st["Seccomp_filters"] == "1"
    assert "Permission denied" in out, "mkdir gets errnoRet 13 (EACCES)"
    assert "Operation not permitted" in out, "default errno is EPERM"
    assert out.rstrip().endswith("done")


def test_seccomp_kill_process(runtime, make_bundle, cid):
    def seccomp(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    proc = runtime.run("run", "-b", str(make_bundle(["uname"], seccomp)), cid)
    assert proc.returncode == 128 + 31, proc.returncode  # SIGSYS


def test_seccomp_default_errno_allowlist(runtime, make_bundle, cid):
    allowed = ["execve", "brk", "mmap", "munmap", "mprotect", "arch_prctl", "set_tid_address",
               "exit_group", "write", "read", "getpid", "rt_sigaction", "rt_sigprocmask",
               "close", "fstat", "newfstatat", "openat", "ioctl", "getuid", "geteuid",
               "getppid", "getcwd", "uname", "prlimit64", "close_range", "fcntl", "dup2",
               "rt_sigreturn", "set_robust_list", "rseq", "getrandom", "futex", "stat",
               "exit", "lseek", "readlink", "access", "wait4", "clone", "fork", "vfork",
               "fstatfs", "statfs", "getdents64", "sched_getaffinity", "capget", "capset",
               "prctl", "setgroups", "setresuid", "setresgid", "setuid", "setgid", "chdir",
               "fchdir", "getgid", "getegid", "gettid", "tgkill", "nanosleep", "pipe2",
               "epoll_pwait", "epoll_ctl", "epoll_create1", "sigaltstack", "madvise",
               "mlock", "munlock", "sched_yield", "clock_gettime", "write", "pread64",
               "faccessat2", "dup3", "uname", "socket", "connect", "poll", "select"]

    def seccomp(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                                 "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]}
    out = run_in(runtime, make_bundle, cid, "echo alive; hostname x 2>&1; echo end", seccomp)
    assert out.startswith("alive") and "end" in out


def test_seccomp_notify_listener(pyrunc, make_bundle, cid, tmp_path):
    path = str(tmp_path / "listener.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    received: dict = {}

    def listen() -> None:
        conn, _ = server.accept()
        msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
        received["state"] = json.loads(msg)
        received["fd"] = struct.unpack("i", anc[0][2][:4])[0]
        conn.close()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()

    def seccomp(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                                 "listenerMetadata": "meta-1",
                                 "syscalls": [{"names": ["mkdirat", "mkdir"],
                                               "action": "SCMP_ACT_NOTIFY"}]}
    try:
        pyrunc.run("create", "-b", str(make_bundle(["sleep", "5"], seccomp)), cid, check=True)
        thread.join(5)
        doc = received["state"]
        assert doc["fds"] == ["seccompFd"]
        assert doc["metadata"] == "meta-1"
        assert doc["state"]["id"] == cid
        assert doc["pid"] == pyrunc.state(cid)["pid"]
        assert received["fd"] >= 0
        os.close(received["fd"])
    finally:
        server.close()


def test_capabilities_sets(runtime, make_bundle, cid):
    def caps(c):
        c["process"]["capabilities"] = {
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL"],
        }
        c["process"]["noNewPrivileges"] = False
    out = run_in(runtime, make_bundle, cid, "grep -E '^Cap' /proc/self/status", caps)
    st = status_of(out)
    chown, kill, net_raw = 1 << 0, 1 << 5, 1 << 13
    assert int(st["CapBnd"], 16) == chown | kill | net_raw
    assert int(st["CapPrm"], 16) & (chown | kill | net_raw) == int(st["CapPrm"], 16)
    assert int(st["CapInh"], 16) == kill
    assert int(st["CapAmb"], 16) == kill


def test_non_root_user_keeps_only_configured_caps(runtime, make_bundle, cid):
    def user(c):
        c["process"]["user"] = {"uid": 1234, "gid": 1234}
        c["process"]["capabilities"] = {k: ["CAP_NET_BIND_SERVICE"] for k in
                                        ("bounding", "effective", "permitted", "inheritable",
                                         "ambient")}
    out = run_in(runtime, make_bundle, cid, "id -u; grep -E '^CapEff' /proc/self/status", user)
    lines = out.splitlines()
    assert lines[0] == "1234"
    assert int(lines[1].split()[1], 16) == 1 << 10


def test_no_host_fds_reach_the_container(runtime, make_bundle, cid, tmp_path):
    extra = open(tmp_path / "host-file", "w")  # an fd the caller leaks to the runtime
    try:
        os.set_inheritable(extra.fileno(), True)
        bundle = make_bundle(["sh", "-c", "ls /proc/self/fd | wc -l; readlink /proc/1/cwd"])
        proc = runtime.run("run", "-b", str(bundle), cid, pass_fds=(extra.fileno(),))
        assert proc.returncode == 0, proc.stderr
        count, cwd = proc.stdout.split()
        assert int(count) == 4, "0-2 and ls's own directory fd only"
        assert cwd == "/"
    finally:
        extra.close()


def test_mount_destination_symlink_cannot_escape(pyrunc, make_bundle, cid, tmp_path):
    target = tmp_path / "host-target"
    target.mkdir()

    def mounts(c):
        c["mounts"].append({"destination": "/escape/inside", "type": "tmpfs",
                            "source": "tmpfs", "options": ["size=1k"]})
    bundle = make_bundle(["stat", "-f", "-c", "%T", "/escape/inside/"], mounts)
    os.symlink(str(target), bundle / "rootfs" / "escape")  # absolute link out of the rootfs
    proc = pyrunc.run("run", "-b", str(bundle), cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "tmpfs", "the mount lands inside the rootfs, at the link"
    assert list(target.iterdir()) == [], "nothing may be created outside the rootfs"


def test_masks_hold_without_cap_sys_admin(runtime, make_bundle, cid):
    """Every way a container root without CAP_SYS_ADMIN could lift a mask or a read-only
    path fails, and the masked/read-only files stay as they were."""
    attempts = {
        "umount-mask": "umount /proc/keys",
        "umount-lazy": "umount -l /proc/kcore",
        "remount-proc-sys": "mount -o remount,rw /proc/sys",
        "remount-sys": "mount -o remount,rw /sys",
        "umount-firmware": "umount /sys/firmware",
        "write-proc-sys": "echo 1 > /proc/sys/kernel/panic_on_oops",
        "write-sysrq": "echo h > /proc/sysrq-trigger",
        "bind-over": "mount --bind /tmp /proc/sys",
        "new-proc": "mkdir -p /dev/p && mount -t proc proc /dev/p",
    }
    script = "; ".join(f"{cmd} 2>/dev/null && echo {name}:ok || echo {name}:refused"
                       for name, cmd in attempts.items())
    script += "; wc -c < /proc/keys; ls /sys/firmware | wc -l; cat /proc/sys/kernel/panic_on_oops"
    before = open("/proc/sys/kernel/panic_on_oops").read().strip()
    out = run_in(runtime, make_bundle, cid, script)
    lines = out.splitlines()
    for name in attempts:
        assert f"{name}:refused" in lines, out
    assert lines[-3:] == ["0", "0", before], out
    assert open("/proc/sys/kernel/panic_on_oops").read().strip() == before


def test_masked_dev_null_is_the_real_null_device(pyrunc, make_bundle, cid, tmp_path):
    """CVE-2025-31133 class: masking binds /dev/null; a fake one must be refused."""
    fake_dev = tmp_path / "fake-dev"
    fake_dev.mkdir()
    (fake_dev / "null").write_text("not a device")

    def fake_null(c):
        c["mounts"] = [m for m in c["mounts"] if not m["destination"].startswith("/dev")]
        c["mounts"].append({"destination": "/dev", "type": "bind", "source": str(fake_dev),
                            "options": ["bind"]})
    bundle = make_bundle(["true"], fake_null)
    proc = pyrunc.run("run", "-b", str(bundle), cid)
    assert proc.returncode == 1
    assert "not the null device" in proc.stderr


def test_joining_runtime_exe_cannot_be_opened(runtime, make_bundle, cid):
    """CVE-2019-5736 class: while `exec` runs, a container process watches /proc for the
    runtime's joining process and tries to open its /proc/PID/exe (the host's interpreter or
    runtime binary). Non-dumpable, the link can be neither read nor opened."""
    # an unreadable link is listed without a target ("... /proc/N/exe"): not found
    watch = ("while :; do ls -l /proc/[0-9]*/exe 2>/dev/null | grep -v -e '-> /bin/busybox$' "
             "-e '/exe$' >> /dev/found; done")
    runtime.run("run", "-d", "-b", str(make_bundle(["sh", "-c", watch])), cid, check=True)
    for _ in range(25):
        runtime.run("exec", cid, "true", check=True)
    found = runtime.run("exec", cid, "cat", "/dev/found", check=True).stdout
    assert found == "", f"host executables reachable from the container: {found}"


def test_dev_null_symlink_cannot_redirect_masks(pyrunc, make_bundle, cid, tmp_path):
    """CVE-2025-31133: with /dev/null a symlink to a writable procfs file, masking would bind
    that file over the masked path, and the container could write through it. pyrunc refuses.
    The link points at the container's own domainname, so even a failure harms nothing.
    (runc 1.1.5 predates the fix: it binds domainname over /proc/timer_list, and a write
    through the mask succeeds, which is why this runs pyrunc only.)"""
    fake_dev = tmp_path / "link-dev"
    fake_dev.mkdir()
    os.symlink("/proc/sys/kernel/domainname", fake_dev / "null")

    def link_null(c):
        c["mounts"] = [m for m in c["mounts"] if not m["destination"].startswith("/dev")]
        c["mounts"].append({"destination": "/dev", "type": "bind", "source": str(fake_dev),
                            "options": ["bind"]})
        c["linux"]["maskedPaths"] = ["/proc/timer_list"]
        c["linux"]["readonlyPaths"] = []
    proc = pyrunc.run("run", "-b", str(make_bundle(
        ["sh", "-c", "echo x > /proc/timer_list && echo WROTE"], link_null)), cid)
    assert proc.returncode == 1, proc.stdout
    assert "WROTE" not in proc.stdout
    assert "not the null device" in proc.stderr, proc.stderr


def test_masked_symlink_resolves_inside_the_rootfs(runtime, make_bundle, cid):
    """A masked path that is an absolute symlink masks the container's target, not a host
    path of the same name (masking happens inside the new root)."""
    def mask_link(c):
        c["linux"]["maskedPaths"] = ["/etc/link-to-secret"]
    bundle = make_bundle(["sh", "-c", "cat /etc/secret; echo end"], mask_link)
    (bundle / "rootfs" / "etc" / "secret").write_text("SECRET\n")
    os.symlink("/etc/secret", bundle / "rootfs" / "etc" / "link-to-secret")
    proc = runtime.run("run", "-b", str(bundle), cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "end\n"


@pytest.mark.parametrize("fd", range(3, 10))
def test_cwd_through_a_leaked_fd_stays_inside(pyrunc, make_bundle, cid, fd):
    """CVE-2024-21626: process.cwd /proc/self/fd/N must not land on a directory of the host
    that the runtime had open. Either chdir fails, or `..` from the cwd reaches the
    container's own root. (runc 1.1.5 predates the fix in 1.1.12, so pyrunc only.)"""
    script = ("cd ../../../../../../../../..; stat -c %d:%i .; stat -c %d:%i /")

    def cwd(c):
        c["process"]["cwd"] = f"/proc/self/fd/{fd}"
    proc = pyrunc.run("run", "-b", str(make_bundle(["sh", "-c", script], cwd)), cid)
    if proc.returncode == 0:
        top, root = proc.stdout.split()
        assert top == root, "cwd outside the container's root"
    else:
        assert proc.stderr.startswith("pyrunc: process.cwd"), proc.stderr
    started = pyrunc.run("run", "-d", "-b", str(make_bundle(["sleep", "30"])), cid + "x")
    assert started.returncode == 0, started.stderr
    proc = pyrunc.run("exec", "--cwd", f"/proc/self/fd/{fd}", cid + "x", "sh", "-c", script)
    if proc.returncode == 0:
        top, root = proc.stdout.split()
        assert top == root, "exec --cwd outside the container's root"
    else:
        assert "chdir to cwd" in proc.stderr, proc.stderr


SIGSYS_EXIT = 128 + 31


def test_seccomp_actions_seen_inside(runtime, make_bundle, cid):
    """Every action from inside: TRAP, KILL and KILL_THREAD end the caller with SIGSYS, TRACE
    without a tracer fails the call with ENOSYS, LOG lets it through, ERRNO returns errnoRet."""
    def seccomp(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["sync"], "action": "SCMP_ACT_TRAP"},
            {"names": ["mknod", "mknodat"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["rmdir"], "action": "SCMP_ACT_KILL"},
            {"names": ["symlink", "symlinkat"], "action": "SCMP_ACT_TRACE"},
            {"names": ["link", "linkat"], "action": "SCMP_ACT_LOG"},
            {"names": ["unlink", "unlinkat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
        ]}
    out = run_in(runtime, make_bundle, cid,
                 "touch /dev/f; sync; echo trap:$?; mkfifo /dev/p; echo kill_thread:$?; "
                 "rmdir /dev/none; echo kill:$?; ln -s a /dev/l 2>&1; echo trace:$?; "
                 "ln /dev/f /dev/h && echo log:linked; rm /dev/f 2>&1; echo errno:$?", seccomp)
    lines = out.splitlines()
    assert f"trap:{SIGSYS_EXIT}" in lines
    assert f"kill_thread:{SIGSYS_EXIT}" in lines
    assert f"kill:{SIGSYS_EXIT}" in lines
    assert "Function not implemented" in out and "trace:1" in lines, out
    assert "log:linked" in lines
    assert "Invalid cross-device link" in out and "errno:1" in lines, out  # errnoRet 18


@pytest.mark.parametrize(("op", "value", "value_two", "denied"), [
    ("SCMP_CMP_EQ", 5, 0, {5}), ("SCMP_CMP_NE", 5, 0, {3, 7}), ("SCMP_CMP_LT", 5, 0, {3}),
    ("SCMP_CMP_LE", 5, 0, {3, 5}), ("SCMP_CMP_GT", 5, 0, {7}), ("SCMP_CMP_GE", 5, 0, {5, 7}),
    ("SCMP_CMP_MASKED_EQ", 4, 4, {5, 7}),
])
def test_seccomp_arg_operators(runtime, make_bundle, cid, op, value, value_two, denied):
    """chmod MODE: the mode is an argument the container controls (chmod arg 1, fchmodat
    arg 2); each operator denies exactly the modes it matches, with errnoRet EACCES."""
    cmp = {"value": value, "valueTwo": value_two, "op": op}

    def seccomp(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [dict(cmp, index=1)]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [dict(cmp, index=2)]},
        ]}
    out = run_in(runtime, make_bundle, cid,
                 "touch /dev/f; for m in 3 5 7; do chmod $m /dev/f 2>/dev/null && echo $m:ok "
                 "|| echo $m:denied; done", seccomp)
    got = {int(line.split(":")[0]) for line in out.splitlines() if line.endswith(":denied")}
    assert got == denied, out


def test_seccomp_same_argument_twice_is_an_or(runtime, make_bundle, cid):
    """Two comparisons of one argument in one rule: runc adds a rule per comparison."""
    def seccomp(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 1, "value": 3, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 7, "op": "SCMP_CMP_EQ"}]}]}
    out = run_in(runtime, make_bundle, cid,
                 "touch /dev/f; for m in 3 5 7; do chmod $m /dev/f 2>/dev/null && echo $m:ok "
                 "|| echo $m:denied; done", seccomp)
    assert out.split() == ["3:denied", "5:ok", "7:denied"]


def _seccomp_audit_lines() -> set[str]:
    import subprocess

    log = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
    return {line for line in log.splitlines() if "type=1326" in line}


@pytest.mark.parametrize("flags", [[], ["SECCOMP_FILTER_FLAG_LOG"],
                                   ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]])
def test_seccomp_flags(pyrunc, make_bundle, cid, flags):
    """flags: with SECCOMP_FILTER_FLAG_LOG the kernel audits the ERRNO hit (dmesg, type=1326,
    comm mkfifo, code 0x50000); without it, not. TSYNC and SPEC_ALLOW load and the filter
    works. (runc 1.1.5 refuses any flags: "seccomp flags are not yet supported by runc".)"""
    def seccomp(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "flags": flags,
                                 "syscalls": [{"names": ["mknod", "mknodat"],
                                               "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    before = _seccomp_audit_lines()
    out = run_in(pyrunc, make_bundle, cid, "mkfifo /dev/p 2>&1; grep -E "
                 "'^(Seccomp|Speculation_Store_Bypass):' /proc/self/status", seccomp)
    assert "Permission denied" in out
    st = status_of(out)
    assert st["Seccomp"] == "2"
    if "SECCOMP_FILTER_FLAG_SPEC_ALLOW" in flags:  # the filter left speculation as it was
        with open("/proc/self/status") as f:
            assert status_of(f.read())["Speculation_Store_Bypass"] == \
                st["Speculation_Store_Bypass"]
    audited = [line for line in _seccomp_audit_lines() - before
               if 'comm="mkfifo"' in line and "code=0x50000" in line]
    assert len(audited) == ("SECCOMP_FILTER_FLAG_LOG" in flags), audited


def test_seccomp_wait_killable_recv(pyrunc, make_bundle, cid):
    """WAIT_KILLABLE_RECV (kernel 5.19, libseccomp 2.6): where supported_flags() lists it
    the filter loads and works; otherwise a one-line config error and nothing left behind."""
    from ociruntime.linux.seccomp import supported_flags

    def seccomp(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                 "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                                 "syscalls": [{"names": ["mknod", "mknodat"],
                                               "action": "SCMP_ACT_ERRNO"}]}
    proc = pyrunc.run("run", "-b", str(make_bundle(
        ["sh", "-c", "mkfifo /dev/p 2>&1; grep ^Seccomp: /proc/self/status"], seccomp)), cid)
    if "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" in supported_flags():
        assert proc.returncode == 0, proc.stderr
        assert "Operation not permitted" in proc.stdout and "Seccomp:\t2" in proc.stdout
    else:
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1 and "WAIT_KILLABLE_RECV" in proc.stderr
