"""runc-compatible command-line parsing, table-driven (argparse costs ~10 ms per start).

Global flags come before the command. Command flags accept `--name value`, `--name=value`,
`-x value` and, for booleans, `--name=true|false`. Commands that take a command line of their
own (`exec ID CMD...`, `ps ID ARGS...`) stop reading flags after the container ID.
"""

from __future__ import annotations

from ociruntime.errors import RuntimeFailure

BOOL, STR, INT, LIST, INTLIST = "bool", "str", "int", "list", "intlist"


class Flag:
    """One flag: its names, where it goes, what it holds, and its help text."""

    __slots__ = ("names", "dest", "kind", "default", "help")

    def __init__(self, names: str, kind: str = BOOL, default: object = None, help: str = "",
                 dest: str | None = None) -> None:
        self.names = names.split(",")
        self.dest = dest or self.names[0].lstrip("-").replace("-", "_")
        self.kind = kind
        self.default = default if default is not None else {
            BOOL: False, INT: 0, LIST: [], INTLIST: []}.get(kind)
        self.help = help


class Command:
    """A subcommand: flags, positional names, and whether the rest of argv is its own."""

    __slots__ = ("name", "flags", "positionals", "optional", "rest", "help")

    def __init__(self, name: str, help: str, flags: list[Flag], positionals: list[str],
                 optional: list[tuple[str, str]] | None = None, rest: str | None = None) -> None:
        self.name = name
        self.help = help
        self.flags = flags
        self.positionals = positionals
        self.optional = optional or []
        self.rest = rest


class Args:
    """Parsed arguments as attributes (like argparse.Namespace)."""

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Args({self.__dict__!r})"


_CREATE_FLAGS = [
    Flag("--bundle,-b", STR, help="path to the bundle directory (default: current directory)"),
    Flag("--pid-file", STR, help="file to write the container init's pid to"),
    Flag("--console-socket", STR, help="unix socket that receives the pty master"),
    Flag("--pidfd-socket", STR, help="unix socket that receives the init's pidfd (ignored)"),
    Flag("--no-pivot", help="do not use pivot_root (MS_MOVE + chroot instead)"),
    Flag("--no-new-keyring", help="do not create a new session keyring"),
    Flag("--preserve-fds", INT, help="pass N additional fds (3..3+N-1) to the container"),
]

GLOBAL_FLAGS = [
    Flag("--root", STR, "", "state root directory (default /run/pyrunc; rootless: "
         "$XDG_RUNTIME_DIR/pyrunc)"),
    Flag("--log", STR, help="log file (JSON lines with --log-format json)"),
    Flag("--log-format", STR, "text", "text or json"),
    Flag("--debug", help="debug logging"),
    Flag("--systemd-cgroup", help="manage cgroups with systemd (not supported)"),
    Flag("--rootless", STR, "auto", "true, false or auto"),
    Flag("--criu", STR, help="path to criu (unused)"),
    Flag("--version,-v", help="print the version"),
    Flag("--help,-h", help="show help"),
]

COMMANDS: dict[str, Command] = {c.name: c for c in [
    Command("create", "create a container", _CREATE_FLAGS, ["container_id"]),
    Command("run", "create and start a container", [
        *_CREATE_FLAGS,
        Flag("--detach,-d", help="detach from the container's process"),
        Flag("--keep", help="do not delete the container after it exits"),
        Flag("--no-subreaper", help="accepted for compatibility"),
    ], ["container_id"]),
    Command("start", "start a created container", [], ["container_id"]),
    Command("state", "print the container's state as JSON", [], ["container_id"]),
    Command("kill", "send a signal to the container's init", [
        Flag("--all,-a", help="signal every process in the container"),
    ], ["container_id"], optional=[("signal", "SIGTERM")]),
    Command("delete", "delete a container", [
        Flag("--force,-f", help="kill the container first if it runs"),
    ], ["container_id"]),
    Command("list", "list containers", [
        Flag("--format,-f", STR, "table", "table or json"),
        Flag("--quiet,-q", help="print only the IDs"),
    ], []),
    Command("exec", "run a process in a running container", [
        Flag("--process,-p", STR, help="runtime-spec Process JSON file"),
        Flag("--tty,-t", help="allocate a terminal"),
        Flag("--cwd", STR, help="working directory"),
        Flag("--env,-e", LIST, help="add an environment variable (repeatable)"),
        Flag("--user,-u", STR, help="uid[:gid]"),
        Flag("--additional-gids,-g", INTLIST, help="additional gid (repeatable)"),
        Flag("--cap,-c", LIST, help="add a capability (repeatable)"),
        Flag("--no-new-privs", help="set no_new_privs"),
        Flag("--apparmor", STR, help="AppArmor profile"),
        Flag("--process-label", STR, help="SELinux label"),
        Flag("--console-socket", STR, help="unix socket that receives the pty master"),
        Flag("--pidfd-socket", STR, help="unix socket that receives a pidfd (ignored)"),
        Flag("--detach,-d", help="do not wait for the process"),
        Flag("--pid-file", STR, help="file to write the process's pid to"),
        Flag("--preserve-fds", INT, help="pass N additional fds"),
        Flag("--cgroup", LIST, help="sub-cgroup to join (not supported)"),
        Flag("--ignore-paused", help="allow exec into a paused container"),
    ], ["container_id"], rest="exec_args"),
    Command("pause", "freeze all processes of a container", [], ["container_id"]),
    Command("resume", "thaw a paused container", [], ["container_id"]),
    Command("ps", "list the container's processes", [
        Flag("--format,-f", STR, "table", "table or json"),
    ], ["container_id"], rest="ps_args"),
    Command("update", "update a running container's resource limits", [
        Flag("--resources,-r", STR, help="LinuxResources JSON file, or - for stdin (then the "
             "other flags are ignored)"),
        Flag("--blkio-weight", STR, help="block IO weight (10-1000)"),
        Flag("--cpu-period", STR, help="CPU CFS period (usecs)"),
        Flag("--cpu-quota", STR, help="CPU CFS quota (usecs per period)"),
        Flag("--cpu-share,--cpu-shares", STR, help="CPU shares (relative weight)"),
        Flag("--cpu-rt-period", STR, help="CPU realtime period (usecs)"),
        Flag("--cpu-rt-runtime", STR, help="CPU realtime runtime (usecs per period)"),
        Flag("--cpuset-cpus", STR, help="CPUs to use"),
        Flag("--cpuset-mems", STR, help="memory nodes to use"),
        Flag("--memory", STR, help="memory limit (bytes; k, m, g suffixes)"),
        Flag("--memory-reservation", STR, help="memory soft limit"),
        Flag("--memory-swap", STR, help="memory + swap limit; -1 for unlimited swap"),
        Flag("--kernel-memory", STR, help="kernel memory limit (ignored with a warning, as "
             "by runc)"),
        Flag("--kernel-memory-tcp", STR, help="kernel TCP memory limit (ignored likewise)"),
        Flag("--pids-limit", STR, help="maximum number of processes"),
        Flag("--l3-cache-schema", STR, help="Intel RDT L3 cache schema (not supported)"),
        Flag("--mem-bw-schema", STR, help="Intel RDT memory bandwidth schema (not supported)"),
    ], ["container_id"]),
    Command("events", "print container statistics and OOM events as JSON", [
        Flag("--interval", STR, "5s", "stats interval (Go duration, e.g. 5s, 500ms)"),
        Flag("--stats", help="print the stats once and exit"),
    ], ["container_id"]),
    Command("features", "print the features this runtime implements (JSON)", [], []),
    Command("spec", "write a default config.json", [
        Flag("--bundle,-b", STR, help="where to write config.json"),
        Flag("--rootless", help="a config for rootless containers", dest="rootless_spec"),
    ], []),
]}


def _lookup(flags: list[Flag], name: str) -> Flag | None:
    for flag in flags:
        if name in flag.names:
            return flag
    return None


def _parse_bool(text: str, name: str) -> bool:
    if text.lower() in ("true", "1", "t", "yes"):
        return True
    if text.lower() in ("false", "0", "f", "no"):
        return False
    raise RuntimeFailure(f"invalid boolean value {text!r} for flag {name}")


def _take_flag(flags: list[Flag], values: dict[str, object], argv: list[str], i: int,
               where: str) -> int:
    """Consume the flag at argv[i] (and its value); return the next index."""
    arg = argv[i]
    name, eq, inline = arg.partition("=")
    flag = _lookup(flags, name)
    if flag is None:
        shorts = arg[1:] if not arg.startswith("--") else ""
        if len(shorts) > 1 and all(_lookup(flags, "-" + c) for c in shorts):
            for c in arg[1:]:
                _take_flag(flags, values, ["-" + c], 0, where)
            return i + 1
        raise RuntimeFailure(f"{where}flag provided but not defined: {name}")
    if flag.kind == BOOL:
        values[flag.dest] = _parse_bool(inline, name) if eq else True
        return i + 1
    if eq:
        value, nxt = inline, i + 1
    elif flag.dest == "rootless" and (i + 1 >= len(argv) or argv[i + 1] not in
                                       ("true", "false", "auto")):
        value, nxt = "true", i + 1
    elif i + 1 < len(argv):
        value, nxt = argv[i + 1], i + 2
    else:
        raise RuntimeFailure(f"{where}flag needs an argument: {name}")
    if flag.kind in (INT, INTLIST):
        try:
            number = int(value)
        except ValueError:
            raise RuntimeFailure(f"{where}invalid value {value!r} for flag {name}") from None
        if flag.kind == INT:
            values[flag.dest] = number
        else:
            values[flag.dest] = [*values[flag.dest], number]  # type: ignore[misc]
    elif flag.kind == LIST:
        values[flag.dest] = [*values[flag.dest], value]  # type: ignore[misc]
    else:
        values[flag.dest] = value
    return nxt


def parse(argv: list[str]) -> Args:
    """Parse the whole command line. `command` is None when only global flags were given."""
    values: dict[str, object] = {f.dest: f.default for f in GLOBAL_FLAGS}
    values["command"] = None
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        i = _take_flag(GLOBAL_FLAGS, values, argv, i, "")
    if i == len(argv):
        return Args(**values)
    try:
        return _parse_command(argv, i, values)
    except RuntimeFailure as failure:
        # like runc, a bad command line after the global flags is still logged to --log
        failure.global_args = Args(**{f.dest: values[f.dest] for f in GLOBAL_FLAGS})
        raise


def _parse_command(argv: list[str], i: int, values: dict[str, object]) -> Args:
    """Parse `argv[i:]`: the command's name, flags and positionals, into `values`."""
    name = argv[i]
    command = COMMANDS.get(name)
    if command is None:
        raise RuntimeFailure(f"no such command: {name}")
    values["command"] = name
    for flag in command.flags:
        values[flag.dest] = flag.default
    if command.rest:
        values[command.rest] = []
    positionals: list[str] = []
    i += 1
    where = f"{name}: "
    need = len(command.positionals)
    while i < len(argv):
        arg = argv[i]
        if command.rest and len(positionals) >= need:
            values[command.rest] = argv[i:]
            break
        if arg == "--":
            positionals.extend(argv[i + 1:])
            break
        if arg in ("--help", "-h"):
            values["help"] = True
            i += 1
        elif arg.startswith("-") and arg != "-":
            i = _take_flag(command.flags, values, argv, i, where)
        else:
            positionals.append(arg)
            i += 1
    if values.get("help"):
        return Args(**values)
    if command.rest and len(positionals) > need:
        values[command.rest] = positionals[need:]
        positionals = positionals[:need]
    most = need + len(command.optional)
    if len(positionals) < need or len(positionals) > most:
        count = f"{need}" if most == need else f"{need} to {most}"
        raise RuntimeFailure(f'"{name}" requires {count} argument(s)')
    for dest, value in zip(command.positionals, positionals, strict=False):
        values[dest] = value
    for k, (dest, default) in enumerate(command.optional):
        values[dest] = positionals[need + k] if need + k < len(positionals) else default
    return Args(**values)


def usage(command: str | None = None) -> str:
    """Help text for `pyrunc --help` or `pyrunc COMMAND --help`."""
    def table(flags: list[Flag]) -> str:
        return "".join(f"   {', '.join(f.names):<28} {f.help}\n" for f in flags)

    if command and command in COMMANDS:
        c = COMMANDS[command]
        args = " ".join(f"<{p.replace('_', '-')}>" for p in c.positionals)
        opt = " ".join(f"[{d}]" for d, _ in c.optional)
        rest = " [args...]" if c.rest else ""
        return (f"usage: pyrunc {c.name} [options] {args} {opt}{rest}\n\n{c.help}\n\n"
                f"options:\n{table(c.flags)}")
    cmds = "".join(f"   {c.name:<10} {c.help}\n" for c in COMMANDS.values())
    return (f"usage: pyrunc [global options] command [options] [arguments...]\n\n"
            f"An OCI runtime-spec container runtime (runc-compatible), in Python.\n\n"
            f"commands:\n{cmds}\nglobal options:\n{table(GLOBAL_FLAGS)}")
