"""Seccomp as the container's process feels it: every action, operator and flag, checked with a
small static probe (tests/integration/probe.c) that makes one syscall with chosen
arguments inside the container and prints what came back.

Both runtimes run each case where runc 1.1.5 takes the config; the flag cases are pyrunc's
alone because runc 1.1.5 refuses every `linux.seccomp.flags` ("seccomp flags are not yet
supported by runc").
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from ociruntime.linux.seccomp import library
from tests.integration.probe import build as build_probe

pytestmark = pytest.mark.privileged

# <linux/seccomp.h>: struct seccomp_notif is 80 bytes, seccomp_notif_resp 24
NOTIF_RECV = 0xC0502100
NOTIF_SEND = 0xC0182101
NOTIF_FLAG_CONTINUE = 1


NAME = "sched_getscheduler"  # a syscall neither sh nor the runtimes make; ignores arg 1-5
OTHER = "sched_get_priority_max"


def nr(name: str) -> int:
    """The native syscall number, from libseccomp's table (what the filter uses)."""
    number = library().seccomp_syscall_resolve_name(name.encode())
    assert number >= 0, name
    return number


TARGET = nr(NAME)


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_probe(tmp_path_factory.mktemp("probe"))


@pytest.fixture
def probe_bundle(make_bundle, probe):
    """probe_bundle(seccomp, script, name="probe", tweak=None) -> bundle running `sh -c script`
    with the probe at /NAME (a distinct name shows as its own comm in the kernel's log)."""
    def factory(seccomp: dict | None, script: str, name: str = "probe", tweak=None) -> Path:
        def overrides(c: dict) -> None:
            if seccomp is not None:
                c["linux"]["seccomp"] = seccomp
            if tweak:
                tweak(c)
        bundle = make_bundle(["sh", "-c", script], overrides)
        shutil.copy(probe, bundle / "rootfs" / name)
        return bundle
    return factory


def rules(*syscalls: dict, default: str = "SCMP_ACT_ALLOW", **extra) -> dict:
    return {"defaultAction": default, "syscalls": list(syscalls), **extra}


def run(rt, bundle: Path, cid: str) -> subprocess.CompletedProcess[str]:
    return rt.run("run", "-b", str(bundle), cid)


def results(out: str) -> list[int]:
    """The errno of every `ret=R errno=E` line."""
    return [int(line.split("errno=")[1]) for line in out.splitlines() if "errno=" in line]


# --- actions -------------------------------------------------------------------------------


def test_errno_action_with_and_without_errno_ret(runtime, probe_bundle, cid):
    seccomp = rules({"names": [NAME], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV},
                    {"names": [OTHER], "action": "SCMP_ACT_ERRNO"})
    proc = run(runtime, probe_bundle(seccomp, f"/probe call {TARGET} 0; "
                                              f"/probe call {nr(OTHER)} 1; "
                                              f"/probe call {nr('sched_get_priority_min')} 1"),
               cid)
    assert proc.returncode == 0, proc.stderr
    assert results(proc.stdout) == [errno.EXDEV, errno.EPERM, 0]


def test_default_errno_ret_on_an_allowlist(runtime, probe_bundle, cid):
    """defaultAction ERRNO with defaultErrnoRet: whatever is not listed fails with that errno."""
    allowed = ["execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq",
               "prlimit64", "readlink", "readlinkat", "getrandom", "mprotect", "mmap", "munmap",
               "write", "exit_group", "exit", "newfstatat", "fstat", "uname", "getpid", "getppid",
               "close_range", "close", "fcntl", "capget", "capset", "prctl", "setgroups",
               "setresuid", "setresgid", "setuid", "setgid", "chdir", "getcwd", "umask",
               "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "futex", "openat", "read",
               "getdents64", "lseek", "ioctl", "sched_getaffinity", "fstatfs", "statfs",
               "not_a_syscall"]
    seccomp = rules({"names": allowed, "action": "SCMP_ACT_ALLOW"},
                    default="SCMP_ACT_ERRNO", defaultErrnoRet=errno.ENOTTY)

    def direct(c):
        c["process"]["args"] = ["/probe", "call", str(TARGET), "0"]
    proc = run(runtime, probe_bundle(seccomp, "", tweak=direct), cid)
    assert proc.returncode == 0, proc.stderr
    assert results(proc.stdout) == [errno.ENOTTY], proc.stdout


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"])
def test_kill_thread_kills_only_the_calling_thread(runtime, probe_bundle, cid, action):
    seccomp = rules({"names": [NAME], "action": action})
    proc = run(runtime, probe_bundle(seccomp, f"/probe thread {TARGET}; echo rc=$?"), cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "main alive\nrc=0\n", "the thread died before it could print"


def test_kill_thread_of_a_single_thread_process_is_sigsys(runtime, probe_bundle, cid):
    seccomp = rules({"names": [NAME], "action": "SCMP_ACT_KILL"})
    proc = run(runtime, probe_bundle(seccomp, f"/probe call {TARGET} 0; echo rc=$?"), cid)
    assert proc.stdout == f"rc={128 + signal.SIGSYS}\n"


def test_kill_process_kills_every_thread(runtime, probe_bundle, cid):
    seccomp = rules({"names": [NAME], "action": "SCMP_ACT_KILL_PROCESS"})
    proc = run(runtime, probe_bundle(seccomp, f"/probe thread {TARGET}; echo rc=$?"), cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"rc={128 + signal.SIGSYS}\n"


def test_kill_process_as_default_kills_the_container(runtime, probe_bundle, cid):
    """An empty allowlist: the first syscall after the filter kills with SIGSYS. pyrunc loads
    the filter right before execve, so its container process dies of SIGSYS (exit 159);
    runc 1.1.5's Go init makes syscalls after loading it and dies first ("container process
    is already dead", exit 1). Either way nothing runs."""
    seccomp = rules(default="SCMP_ACT_KILL_PROCESS")
    proc = run(runtime, probe_bundle(seccomp, "echo never"), cid)
    assert proc.returncode == (128 + signal.SIGSYS if runtime.name == "pyrunc" else 1)
    assert proc.stdout == ""


def test_trap_delivers_sigsys_with_the_syscall(runtime, probe_bundle, cid):
    seccomp = rules({"names": [NAME], "action": "SCMP_ACT_TRAP"})
    proc = run(runtime, probe_bundle(seccomp, f"/probe trap {TARGET}"), cid)
    assert proc.returncode == 0, proc.stderr
    # si_code SYS_SECCOMP (1), si_syscall the number, si_errno the rule's data (0)
    assert proc.stdout == f"sigsys code=1 nr={TARGET} errno=0\n"


def test_trace_without_a_tracer_fails_with_enosys(runtime, probe_bundle, cid):
    seccomp = rules({"names": [NAME], "action": "SCMP_ACT_TRACE", "errnoRet": 42})
    proc = run(runtime, probe_bundle(seccomp, f"/probe call {TARGET} 0"), cid)
    assert proc.returncode == 0, proc.stderr
    assert results(proc.stdout) == [errno.ENOSYS]


@pytest.mark.parametrize("errno_ret, message", [(None, errno.EPERM), (42, 42)])
def test_trace_hands_errno_ret_to_the_tracer(runtime, probe_bundle, cid, errno_ret, message):
    """A tracer inside the container gets PTRACE_EVENT_SECCOMP with errnoRet (EPERM when
    absent, as runc) as its message; it lets the syscall run."""
    rule = {"names": [NAME], "action": "SCMP_ACT_TRACE"}
    if errno_ret is not None:
        rule["errnoRet"] = errno_ret
    proc = run(runtime, probe_bundle(rules(rule), f"/probe trace {TARGET}"), cid)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"event msg={message}" and results(lines[1]) == [0], proc.stdout


class KernelLog:
    """Seccomp's audit records (type=1326) in /dev/kmsg from now on.

    Without auditd the kernel prints them through printk_ratelimit (10 per 5 s for all its
    users): a burst of KILL/TRAP/LOG records from earlier tests can drop ours, so a caller
    that finds nothing waits out the window and tries once more (`until_logged`).
    """

    WINDOW = 5.5  # kernel.printk_ratelimit (5 s) and a margin

    def __init__(self) -> None:
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        os.lseek(self.fd, 0, os.SEEK_END)
        self.lines: list[str] = []

    def _read(self) -> None:
        while True:
            try:
                self.lines.append(os.read(self.fd, 8192).decode(errors="replace"))
            except BlockingIOError:
                return
            except OSError as e:  # EPIPE: records were overwritten while we read
                if e.errno != errno.EPIPE:
                    raise

    def records(self, comm: str, wait: float = 1.0) -> list[str]:
        """Records of processes named `comm` so far (waiting up to `wait` s for a first)."""
        deadline = time.monotonic() + wait
        while True:
            self._read()
            found = [line for line in self.lines
                     if "type=1326" in line and f'comm="{comm}"' in line]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def suppressed(self) -> bool:
        self._read()
        return any("callbacks suppressed" in line for line in self.lines)

    def until_logged(self, run_once, comm: str) -> list[str]:
        """run_once(attempt) makes a process named `comm` hit the filter; its records."""
        run_once(0)
        found = self.records(comm)
        if not found:
            time.sleep(self.WINDOW)
            run_once(1)
            found = self.records(comm)
        return found

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def kmsg():
    log = KernelLog()
    yield log
    log.close()


def test_log_action_allows_and_logs(runtime, probe_bundle, cid, kmsg):
    comm = f"p{uuid.uuid4().hex[:8]}"
    seccomp = rules({"names": [NAME], "action": "SCMP_ACT_LOG"})

    def once(attempt: int) -> None:
        bundle = probe_bundle(seccomp, f"/{comm} call {TARGET} 0", comm)
        proc = run(runtime, bundle, f"{cid}{attempt}")
        assert proc.returncode == 0, proc.stderr
        assert results(proc.stdout) == [0]
    logged = kmsg.until_logged(once, comm)
    assert len(logged) == 1 and f"syscall={TARGET} " in logged[0], logged
    assert "code=0x7ffc0000" in logged[0]  # SECCOMP_RET_LOG


def test_notify_agent_answers_the_syscall(runtime, probe_bundle, cid, tmp_path):
    """A seccomp agent on listenerPath gets the notify fd, receives the container's syscall
    and answers it: the container sees the agent's errno, then the agent's return value."""
    agent = Agent(tmp_path / "agent.sock", answers=[(0, -errno.EXDEV, 0), (4242, 0, 0)])
    target = nr("sched_getscheduler")
    seccomp = rules({"names": ["sched_getscheduler"], "action": "SCMP_ACT_NOTIFY"},
                    listenerPath=str(agent.path), listenerMetadata="probe-agent")
    try:
        proc = run(runtime, probe_bundle(seccomp, f"/probe call {target} 0; "
                                                  f"/probe call {target} 0"), cid)
        agent.join()
    finally:
        agent.close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["ret=-1 errno=18", "ret=4242 errno=0"]
    assert agent.state["metadata"] == "probe-agent" and agent.state["state"]["id"] == cid
    assert [n["nr"] for n in agent.seen] == [target, target]


class Agent:
    """A seccomp agent: takes the fd from listenerPath, answers notifications in order."""

    def __init__(self, path: Path, answers: list[tuple[int, int, int]],
                 on_receive=None) -> None:
        self.path = path
        self.answers = answers
        self.on_receive = on_receive
        self.seen: list[dict] = []
        self.sent: list[int] = []
        self.state: dict = {}
        self.error: BaseException | None = None
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.fd = -1
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
            msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
            conn.close()
            self.state = json.loads(msg)
            self.fd = struct.unpack("i", anc[0][2][:4])[0]
            for value, error, flags in self.answers:
                ready, _, _ = select.select([self.fd], [], [], 10)
                assert ready, "no notification"
                buf = bytearray(80)
                fcntl.ioctl(self.fd, NOTIF_RECV, buf, True)
                ident, pid, _ = struct.unpack_from("QII", buf)
                number, = struct.unpack_from("i", buf, 16)
                self.seen.append({"id": ident, "pid": pid, "nr": number})
                if self.on_receive:
                    self.on_receive(pid)
                resp = bytearray(struct.pack("QqiI", ident, value, error, flags))
                try:
                    fcntl.ioctl(self.fd, NOTIF_SEND, resp, True)
                    self.sent.append(0)
                except OSError as e:
                    self.sent.append(e.errno)
        except BaseException as e:  # reported by join()
            self.error = e

    def join(self) -> None:
        self.thread.join(15)
        if self.error:
            raise self.error

    def close(self) -> None:
        self.server.close()
        if self.fd >= 0:
            os.close(self.fd)


# --- operators and arguments ---------------------------------------------------------------

VALUES = [0, 17, 18, 19, 0xFFFFFFFF, 0x100000012]


@pytest.mark.parametrize("op, value, value_two, denied", [
    ("SCMP_CMP_EQ", 18, 0, [18]),
    ("SCMP_CMP_NE", 18, 0, [0, 17, 19, 0xFFFFFFFF, 0x100000012]),
    ("SCMP_CMP_LT", 18, 0, [0, 17]),
    ("SCMP_CMP_LE", 18, 0, [0, 17, 18]),
    ("SCMP_CMP_GT", 18, 0, [19, 0xFFFFFFFF, 0x100000012]),
    ("SCMP_CMP_GE", 18, 0, [18, 19, 0xFFFFFFFF, 0x100000012]),
    ("SCMP_CMP_MASKED_EQ", 0xF0, 0x10, [17, 18, 19, 0x100000012]),
])
def test_operator(runtime, probe_bundle, cid, op, value, value_two, denied):
    """Each operator on a full 64-bit argument: the syscall ignores its second one, the filter
    compares the registers all the same."""
    seccomp = rules({"names": [NAME], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
                     "args": [{"index": 1, "value": value, "valueTwo": value_two, "op": op}]})
    script = "; ".join(f"/probe call {TARGET} 0 {v}" for v in VALUES)
    proc = run(runtime, probe_bundle(seccomp, script), cid)
    assert proc.returncode == 0, proc.stderr
    got = [v for v, e in zip(VALUES, results(proc.stdout), strict=True) if e == errno.EXDEV]
    assert got == denied


def test_arguments_of_different_indexes_must_all_match(runtime, probe_bundle, cid):
    seccomp = rules({"names": [NAME], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
                     "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"},
                              {"index": 3, "value": 3, "op": "SCMP_CMP_EQ"}]})
    calls = [(1, 3), (1, 4), (2, 3)]
    script = "; ".join(f"/probe call {TARGET} 0 {a} 0 {b}" for a, b in calls)
    proc = run(runtime, probe_bundle(seccomp, script), cid)
    assert results(proc.stdout) == [errno.EXDEV, 0, 0]


def test_arguments_of_one_index_match_any(runtime, probe_bundle, cid):
    """Two comparisons of the same argument: each is its own rule (runc's reading)."""
    seccomp = rules({"names": [NAME], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
                     "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"},
                              {"index": 1, "value": 3, "op": "SCMP_CMP_EQ"}]})
    script = "; ".join(f"/probe call {TARGET} 0 {a}" for a in (1, 2, 3))
    proc = run(runtime, probe_bundle(seccomp, script), cid)
    assert results(proc.stdout) == [errno.EXDEV, 0, errno.EXDEV]


# --- architectures -------------------------------------------------------------------------

I386_GETPID = 20
I386_SCHED_GETSCHEDULER = 157


def test_listed_32_bit_abi_gets_the_rules(runtime, probe_bundle, cid):
    """With SCMP_ARCH_X86 listed, a rule covers the syscall through int 0x80 too (where it
    has another number)."""
    seccomp = rules({"names": [NAME], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV},
                    architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    proc = run(runtime, probe_bundle(seccomp, f"/probe i386 {I386_SCHED_GETSCHEDULER}; "
                                              f"/probe call {TARGET} 0; "
                                              f"/probe i386 {I386_GETPID}"), cid)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == [f"ret={-errno.EXDEV}", f"ret=-1 errno={errno.EXDEV}"]
    assert int(lines[2].split("=")[1]) > 0, "getpid through int 0x80 is allowed"


def test_unlisted_32_bit_abi_is_killed(runtime, probe_bundle, cid):
    """Only the native arch listed: a syscall through another ABI hits the bad-arch action."""
    seccomp = rules({"names": [NAME], "action": "SCMP_ACT_ERRNO"},
                    architectures=["SCMP_ARCH_X86_64"])
    proc = run(runtime, probe_bundle(seccomp, f"/probe call {nr(OTHER)} 1; "
                                              f"/probe i386 {I386_GETPID}; echo rc=$?"), cid)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert results(lines[0]) == [0] and lines[1:] == [f"rc={128 + signal.SIGSYS}"], proc.stdout


# --- ordering against the runtime's own work ------------------------------------------------


def _user_1000_denied_setuid(nnp: bool):
    def tweak(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        c["process"]["noNewPrivileges"] = nnp
    return tweak


@pytest.mark.parametrize("nnp", [True, False])
def test_filter_loads_after_the_user_switch_only_with_no_new_privs(runtime, probe_bundle,
                                                                   cid, nnp):
    """With noNewPrivileges the filter comes last, after the runtime switched uid (denying
    setuid then only binds the container); without it the filter must be loaded while the
    runtime still has CAP_SYS_ADMIN, before the switch, which it then blocks."""
    names = ["setuid", "setresuid", "setreuid", "setgid", "setresgid", "setregid"]
    seccomp = rules({"names": names, "action": "SCMP_ACT_ERRNO"})
    proc = run(runtime, probe_bundle(seccomp, "id -u; grep NoNewPrivs /proc/self/status",
                                     tweak=_user_1000_denied_setuid(nnp)), cid)
    if nnp:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["1000", "NoNewPrivs:", "1"]
    else:
        assert proc.returncode != 0 and "1000" not in proc.stdout


# --- refused configs, as runc 1.1.5 refuses them ---------------------------------------------


@pytest.mark.parametrize("seccomp", [
    rules(default="SCMP_ACT_NOTIFY", listenerPath="/tmp/none.sock"),
    rules({"names": ["write"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/tmp/none.sock"),
], ids=["notify-default", "notify-write"])
def test_notify_that_would_hang_the_runtime_is_refused(runtime, probe_bundle, cid, seccomp):
    proc = runtime.run("create", "-b", str(probe_bundle(seccomp, "true")), cid, timeout=10)
    assert proc.returncode == 1
    assert "SCMP_ACT_NOTIFY" in proc.stderr, proc.stderr
    assert runtime.ids() == []


def test_unknown_syscall_names_are_skipped_with_a_debug_line(pyrunc, probe_bundle, cid,
                                                            tmp_path):
    seccomp = rules({"names": ["no_such_syscall", NAME], "action": "SCMP_ACT_ERRNO"})
    log = tmp_path / "log.json"
    proc = pyrunc.run("run", "-b", str(probe_bundle(seccomp, f"/probe call {TARGET} 0")),
                      cid, extra_global=["--debug", "--log", str(log), "--log-format", "json"])
    assert proc.returncode == 0, proc.stderr
    assert results(proc.stdout) == [errno.EPERM]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(d["level"] == "debug" and "no_such_syscall" in d["msg"] for d in lines), lines


# --- flags (pyrunc: runc 1.1.5 refuses them all) --------------------------------------------


def test_log_flag_logs_what_the_filter_denies(pyrunc, probe_bundle, cid, kmsg):
    """With the flag an ERRNO denial is audited; without it not. The negative check is
    bracketed: a flagged run right after the quiet one must be logged, in the same printk
    window, or the quiet run's silence proves nothing."""
    loud, quiet, after = (f"{tag}{uuid.uuid4().hex[:8]}" for tag in "pqa")
    deny = {"names": [NAME], "action": "SCMP_ACT_ERRNO"}

    def hit(comm: str, flags: list[str], name: str) -> None:
        bundle = probe_bundle(rules(deny, flags=flags), f"/{comm} call {TARGET} 0", comm)
        proc = run(pyrunc, bundle, name)
        assert proc.returncode == 0, proc.stderr
        assert results(proc.stdout) == [errno.EPERM]
    logged = kmsg.until_logged(
        lambda attempt: hit(loud, ["SECCOMP_FILTER_FLAG_LOG"], f"{cid}{attempt}"), loud)
    assert len(logged) == 1 and "code=0x50000" in logged[0], logged  # SECCOMP_RET_ERRNO
    time.sleep(kmsg.WINDOW)  # a fresh printk window for the bracketed pair
    hit(quiet, [], cid + "q")
    hit(after, ["SECCOMP_FILTER_FLAG_LOG"], cid + "a")
    assert kmsg.records(after), "the bracketing flagged run must be logged"
    assert kmsg.records(quiet, wait=0) == [], "without the flag a denial is not logged"


@pytest.mark.parametrize("flag", ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
def test_flag_loads_the_same_filter(pyrunc, probe_bundle, cid, flag):
    """TSYNC and SPEC_ALLOW change nothing a one-thread process on this kernel can see (the
    runtime is single-threaded when it loads the filter; speculative store bypass is mitigated
    by prctl, not by seccomp, here): the filter loads and acts."""
    seccomp = rules({"names": [NAME], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
                    flags=[flag])
    proc = run(pyrunc, probe_bundle(seccomp, f"grep ^Seccomp /proc/self/status; "
                                             f"/probe call {TARGET} 0"), cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["Seccomp:\t2", "Seccomp_filters:\t1",
                                        "ret=-1 errno=18"]


def _signal_during_wait(pyrunc, probe_bundle, cid, tmp_path, flags):
    """The agent receives the notification, the process gets SIGUSR1, then the agent answers
    EXDEV. Returns what the container printed and the errno of the agent's first answer."""
    def signal_it(pid: int) -> None:
        if not agent.sent:
            os.kill(pid, signal.SIGUSR1)
            time.sleep(0.3)
    agent = Agent(tmp_path / "agent.sock", answers=[(0, -errno.EXDEV, 0)] * 2,
                  on_receive=signal_it)
    target = nr("sched_getscheduler")
    seccomp = rules({"names": ["sched_getscheduler"], "action": "SCMP_ACT_NOTIFY"},
                    listenerPath=str(agent.path), flags=flags)
    try:
        proc = run(pyrunc, probe_bundle(seccomp, f"/probe signal {target} 0"), cid)
        agent.thread.join(3)
    finally:
        agent.close()
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, agent.sent[0]


def test_wait_killable_recv_holds_signals_once_received(pyrunc, probe_bundle, cid, tmp_path):
    """SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: once the agent has received the notification,
    a signal no longer interrupts the syscall; the agent's answer arrives."""
    out, first = _signal_during_wait(pyrunc, probe_bundle, cid, tmp_path,
                                     ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"])
    assert first == 0, "the agent's answer was accepted"
    assert out == "usr1\nret=-1 errno=18\n"


def test_without_wait_killable_recv_a_signal_interrupts(pyrunc, probe_bundle, cid, tmp_path):
    """The control for the test above: without the flag the handler interrupts the wait, the
    syscall returns EINTR and the agent's late answer finds no notification (ENOENT)."""
    out, first = _signal_during_wait(pyrunc, probe_bundle, cid, tmp_path, [])
    assert first == errno.ENOENT
    assert out == "usr1\nret=-1 errno=4\n"
