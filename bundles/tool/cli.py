"""pyrunc-bundle's command line (see bundles/README.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bundles.tool.store import Store
from ociruntime import log
from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from bundles.tool.spec import Options


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def cmd_import(store: Store, a: argparse.Namespace) -> None:
    from bundles.tool.importer import import_image

    for name in import_image(store, Path(a.path), a.name):
        print(name)


def cmd_images(store: Store, a: argparse.Namespace) -> None:
    images = store.images() if store.root.is_dir() else []
    if a.quiet:
        for image in images:
            print(image.name)
        return
    rows = [["NAME", "ID", "LAYERS", "CREATED"]]
    rows += [[i.name, i.id, str(len(i.diff_ids)), str(i.config.get("created", ""))]
             for i in images]
    _print_table(rows)


def _kept(store: Store) -> set[str]:
    """Digests the containers still use (their image may lose its name)."""
    from bundles.tool.containers import Container, names

    keep: set[str] = set()
    for name in names(store):
        meta = Container(store, name).meta
        keep |= {meta["manifest"], meta["config"], *meta["layers"]}
        keep |= {d["digest"] for d in store.read_json(meta["manifest"])["layers"]}
    return keep


def cmd_rmi(store: Store, a: argparse.Namespace) -> None:
    with store.lock():
        for ref in a.images:
            store.untag(store.image(ref).name)
        store.remove_unused(_kept(store))


def cmd_save(store: Store, a: argparse.Namespace) -> None:
    from bundles.tool import layout

    image = store.image(a.image)
    digests = [image.manifest_digest, image.config_digest,
               *(d["digest"] for d in image.manifest["layers"])]
    manifest = {"mediaType": image.manifest.get("mediaType", layout.OCI_MANIFEST),
                "digest": image.manifest_digest,
                "size": store.blob(image.manifest_digest).stat().st_size,
                "annotations": layout.name_annotations(image.name)}
    layout.write_layout(Path(a.file), {d: store.blob(d) for d in digests}, [manifest])


def _options(a: argparse.Namespace) -> Options:
    from bundles.tool.spec import Options, Volume, parse_size

    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    return Options(
        name=a.name or "", command=command, entrypoint=a.entrypoint, env=a.env,
        workdir=a.workdir, user=a.user, volumes=[Volume.parse(v) for v in a.volume],
        memory=parse_size(a.memory, "--memory") if a.memory else None, cpus=a.cpus,
        cpuset=a.cpuset, pids=a.pids, hostname=a.hostname, net=a.net, bridge=a.bridge,
        subnet=a.subnet, read_only=a.read_only, cap_add=a.cap_add)


def cmd_create(store: Store, a: argparse.Namespace) -> None:
    from bundles.tool import containers

    c = containers.create(store, a.image, _options(a))
    if a.cmd == "run":
        try:
            containers.start(c)
        except BaseException:
            containers.remove(c, force=True)
            raise
    print(c.name)


def _containers(store: Store, a: argparse.Namespace,
                action: Callable[..., object], **kw: object) -> None:
    from bundles.tool.containers import Container

    for name in a.names:
        action(Container.load(store, name), **kw)


def cmd_start(store: Store, a: argparse.Namespace) -> None:
    from bundles.tool.containers import start

    _containers(store, a, start)


def cmd_stop(store: Store, a: argparse.Namespace) -> None:
    from bundles.tool.containers import stop

    _containers(store, a, stop, seconds=a.time)


def cmd_rm(store: Store, a: argparse.Namespace) -> None:
    from bundles.tool.containers import remove

    _containers(store, a, remove, force=a.force)


def cmd_ps(store: Store, a: argparse.Namespace) -> None:
    from bundles.tool.containers import Container, describe, names

    found = [describe(Container(store, n)) for n in names(store)]
    if a.quiet:
        for d in found:
            print(d["name"])
        return
    rows = [["NAME", "IMAGE", "STATUS", "ADDRESS", "COMMAND"]]
    for d in found:
        config = json.loads(Path(d["bundle"], "config.json").read_text())
        rows.append([d["name"], d["image"], d["status"], d["address"] or "-",
                     " ".join(config["process"]["args"])])
    _print_table(rows)


def cmd_inspect(store: Store, a: argparse.Namespace) -> None:
    from bundles.tool.containers import Container, describe

    print(json.dumps([describe(Container.load(store, n)) for n in a.names], indent=2))


def cmd_logs(store: Store, a: argparse.Namespace) -> None:
    from bundles.tool.containers import Container

    c = Container.load(store, a.name)
    try:
        with open(c.log, "rb") as f:
            while chunk := f.read(1 << 16):
                sys.stdout.buffer.write(chunk)
    except FileNotFoundError:
        pass
    sys.stdout.flush()


def cmd_commit(store: Store, a: argparse.Namespace) -> None:
    from bundles.tool.commit import commit
    from bundles.tool.containers import Container

    print(commit(Container.load(store, a.name), a.image))


def cmd_net_hook(store: Store, a: argparse.Namespace) -> None:
    from bundles.tool import bridge

    state = json.loads(sys.stdin.read())
    if a.action == "up":
        bridge.connect(store.net, a.bridge, a.subnet, state["id"], int(state["pid"]))
    else:
        bridge.disconnect(store.net, a.bridge, state["id"])


def _parser() -> argparse.ArgumentParser:
    from bundles.tool.spec import DEFAULT_BRIDGE, DEFAULT_SUBNET, NETWORKS

    p = argparse.ArgumentParser(
        prog="pyrunc-bundle", description="Images to running containers, with pyrunc: "
        "overlay root, volumes, limits, bridge networking, logs, commit.")
    p.add_argument("--root", help="state directory (default $PYRUNC_BUNDLE_ROOT or "
                   "/var/lib/pyrunc-bundle)")
    p.add_argument("--log", help="also write errors as JSON lines to this file")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[..., None], text: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=text, description=text)
        sp.set_defaults(func=func)
        return sp

    sp = add("import", cmd_import, "import an OCI image layout (directory or tar) or a "
             "docker-save archive")
    sp.add_argument("--name", help="name the (single) image NAME[:TAG]")
    sp.add_argument("path")
    sp = add("images", cmd_images, "list images")
    sp.add_argument("-q", "--quiet", action="store_true", help="names only")
    sp = add("rmi", cmd_rmi, "remove images (layers no one uses are deleted)")
    sp.add_argument("images", nargs="+")
    sp = add("save", cmd_save, "write an image as an OCI image layout tar")
    sp.add_argument("image")
    sp.add_argument("file")
    for name, text in (("create", "make a container (bundle) from an image; prints its name"),
                       ("run", "create and start a container, detached; prints its name")):
        sp = add(name, cmd_create, text)
        sp.add_argument("--name", help="container name (default: random)")
        sp.add_argument("-v", "--volume", action="append", default=[],
                        help="bind HOST:CONTAINER[:ro|rw] (HOST made if missing)")
        sp.add_argument("-e", "--env", action="append", default=[], help="KEY=VALUE")
        sp.add_argument("--entrypoint", help="replace the image's Entrypoint")
        sp.add_argument("-w", "--workdir", help="working directory")
        sp.add_argument("-u", "--user", help="USER[:GROUP] (names or numbers)")
        sp.add_argument("--memory", help="memory limit (64m, 1g, bytes)")
        sp.add_argument("--cpus", type=float, help="CPU quota in CPUs (0.5 = half of one)")
        sp.add_argument("--cpuset", help="CPUs allowed (0-1, 0,2)")
        sp.add_argument("--pids", type=int, help="most processes at once")
        sp.add_argument("--hostname", help="hostname (default: the container's name)")
        sp.add_argument("--net", choices=NETWORKS, default="none",
                        help="none (own namespace, loopback only; default), host, bridge")
        sp.add_argument("--bridge", default=DEFAULT_BRIDGE, help="bridge for --net bridge")
        sp.add_argument("--subnet", default=DEFAULT_SUBNET, help="its IPv4 subnet")
        sp.add_argument("--read-only", action="store_true", help="read-only root")
        sp.add_argument("--cap-add", action="append", default=[], help="add a capability")
        sp.add_argument("image")
        sp.add_argument("command", nargs=argparse.REMAINDER, help="replaces the image's Cmd")
    sp = add("start", cmd_start, "start containers again, detached (their changes are kept)")
    sp.add_argument("names", nargs="+")
    sp = add("stop", cmd_stop, "SIGTERM, then SIGKILL after --time seconds")
    sp.add_argument("-t", "--time", type=float, default=10)
    sp.add_argument("names", nargs="+")
    sp = add("rm", cmd_rm, "remove containers (volumes are unmounted first, never deleted)")
    sp.add_argument("-f", "--force", action="store_true", help="kill a running one first")
    sp.add_argument("names", nargs="+")
    sp = add("ps", cmd_ps, "list containers")
    sp.add_argument("-q", "--quiet", action="store_true", help="names only")
    sp = add("inspect", cmd_inspect, "containers as JSON (status, address, bundle, ...)")
    sp.add_argument("names", nargs="+")
    sp = add("logs", cmd_logs, "what a container wrote to stdout and stderr")
    sp.add_argument("name")
    sp = add("commit", cmd_commit, "a container's changes as a new layer and image")
    sp.add_argument("name")
    sp.add_argument("image")
    sp = sub.add_parser("net-hook")  # run by the runtime as an OCI hook, state on stdin
    sp.set_defaults(func=cmd_net_hook)
    sp.add_argument("action", choices=("up", "down"))
    sp.add_argument("--bridge", required=True)
    sp.add_argument("--subnet", required=True)
    return p


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `pyrunc-bundle` console script."""
    args = _parser().parse_args(argv)
    log.PROG = "pyrunc-bundle"
    log.configure(args.log, "json", False)
    if os.geteuid() != 0:
        log.error("must run as root (mounts, cgroups, namespaces)")
        sys.exit(1)
    try:
        args.func(Store(args.root), args)
    except RuntimeFailure as e:
        log.error(str(e))
        sys.exit(1)
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        log.error(f"{args.cmd}{where}: {e.strerror or e}")
        sys.exit(1)
