"""The last steps before execve, shared by a container's init and by `exec`.

`setup_process` turns a runtime-spec Process into the running process's identity: cwd, HOME,
capabilities (bounding first, the rest after the uid switch, as runc does), groups, gid, uid,
no_new_privs, umask, and finds the executable on the container's PATH. `exec_process` closes
every fd but stdio and --preserve-fds, then execs.
"""

from __future__ import annotations

import os

from ociruntime.errors import RuntimeFailure
from ociruntime.linux import syscalls as sc
from ociruntime.linux.capabilities import CapabilitySets
from ociruntime.process.channel import Channel
from ociruntime.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@record
class PreparedProcess:
    """What execve needs, and a seccomp filter still to load at the last moment."""

    executable: str
    args: list[str]
    env: dict[str, str]
    seccomp: Any = None
    notify_fd: int = -1


def home_of(uid: int) -> str:
    """The user's home directory from the container's /etc/passwd, else `/`."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def find_executable(name: str, env: dict[str, str]) -> str:
    """Resolve args[0] like execvp on the process's PATH; runc's error texts when missing."""
    if "/" in name:
        if not os.path.exists(os.path.realpath(name)):  # realpath: /proc/self/exe and kin
            raise RuntimeFailure(f'exec: "{name}": stat {name}: no such file or directory')
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise RuntimeFailure(f'exec: "{name}": permission denied')
        return name
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeFailure(f'exec: "{name}": executable file not found in $PATH')


def env_dict(env: list[str]) -> dict[str, str]:
    """`KEY=VALUE` strings to a dict (later entries win, entries without `=` dropped)."""
    result: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep:
            result[key] = value
    return result


def _setgroups_allowed() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() != "deny"
    except OSError:
        return True


def switch_user(user: dict[str, Any], caps: CapabilitySets | None) -> None:
    """Bounding set, keepcaps, groups, gid, uid, then the remaining capability sets."""
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    if caps is not None:
        caps.drop_bounding()
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)
    groups = [int(g) for g in user.get("additionalGids") or []]
    if _setgroups_allowed():
        os.setgroups(groups)
    elif groups:
        # a user namespace whose gid_map was written without newgidmap: the kernel forbids
        # setgroups (runc refuses such a config too rather than silently dropping the groups)
        raise RuntimeFailure("process.user.additionalGids: cannot set supplementary groups, "
                             "setgroups is denied in this user namespace (map more than your "
                             "own gid, which uses newgidmap)")
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    # a uid change resets "dumpable" to fs.suid_dumpable: where that is 1, the container's
    # processes of the same uid could open /proc/PID/exe (the host's interpreter) until execve
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)
    if caps is not None:
        caps.apply()


def setup_process(process: dict[str, Any], seccomp: Any = None) -> PreparedProcess:
    """Everything between 'the rootfs is ready' and execve, in runc's order.

    Seccomp, like runc: without no_new_privs the filter must be loaded while we still have
    CAP_SYS_ADMIN, so before the user switch; with no_new_privs it is loaded last, right
    before execve, so that as little as possible of our own work runs under it. A filter with
    SCMP_ACT_NOTIFY is loaded early too, so its fd can still be handed to the runtime.
    """
    env = env_dict(list(process.get("env") or []))
    user = process.get("user") or {}
    if "HOME" not in env:
        env["HOME"] = home_of(int(user.get("uid", 0)))
    cwd = process.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as e:
        raise RuntimeFailure(
            f"chdir to cwd ({cwd!r}) set in config.json failed: {e.strerror}") from None
    # no process.capabilities means no capabilities at all, as in runc (not "keep ours")
    caps = CapabilitySets(process.get("capabilities"))
    nnp = bool(process.get("noNewPrivileges"))
    notify_fd = -1
    if seccomp is not None and (not nnp or seccomp.uses_notify):
        if nnp:
            sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        fd = seccomp.load()
        notify_fd = -1 if fd is None else fd
        seccomp = None
    switch_user(user, caps)
    if nnp:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    args = list(process.get("args") or [])
    if not args:
        raise RuntimeFailure("process.args must not be empty")
    executable = find_executable(args[0], env)
    os.umask(int(user.get("umask", 0o022)))
    return PreparedProcess(executable, args, env, seccomp, notify_fd)


def exec_process(prepared: PreparedProcess, preserve_fds: int,
                 report: Channel | None = None) -> NoReturn:
    """Close every fd above stdio and the preserved ones (close-on-exec), then execve.

    If execve fails the error goes to `report` (exec's parent is still waiting) or stderr.
    """
    if prepared.seccomp is not None:
        try:
            prepared.seccomp.load()
        except RuntimeFailure as e:
            if report is not None:
                report.send_error(str(e))
            else:
                os.write(2, f"pyrunc: {e}\n".encode())
            os._exit(1)
    first = 3 + preserve_fds
    if not sc.close_range_cloexec(first):
        for name in os.listdir("/proc/self/fd"):
            if int(name) >= first:
                try:
                    os.set_inheritable(int(name), False)
                except OSError:
                    pass
    try:
        os.execve(prepared.executable, prepared.args, prepared.env)
    except OSError as e:
        text = f"exec {prepared.executable}: {e.strerror}"
        if report is not None:
            report.send_error(text)
        else:
            os.write(2, f"pyrunc: {text}\n".encode())
        os._exit(127 if e.errno == 2 else 126)
