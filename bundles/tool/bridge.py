"""`--net bridge`: a veth pair from a host bridge into the container's network namespace.

Runs as OCI hooks (`pyrunc-bundle net-hook up|down`, the container state on stdin): up is a
createRuntime hook (the namespace exists, the user process has not started), down a poststop
hook (and `rm` calls it too; it is idempotent). Everything goes through netlink with pyroute2,
imported here only: no `ip` processes.

up: create the bridge if missing (with the subnet's gateway address, up), lease an address
(ipam.py), create a veth pair, put the host end on the bridge, move the other end into the
container's namespace, where it becomes eth0 with the address, up, lo up, and a default route
via the gateway. down: delete the host end if still there (it dies with the namespace anyway),
release the lease, and delete the bridge when this tool created it and no lease is left.
"""

from __future__ import annotations

import hashlib
import os

from bundles.tool import ipam
from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any


def veth_names(net_dir: Path, container: str) -> tuple[str, str]:
    """The host-side veth name and the temporary name of its peer (unique per store and
    container, within the 15 characters of an interface name)."""
    tag = hashlib.sha256(f"{net_dir}\0{container}".encode()).hexdigest()[:10]
    return f"pb{tag}", f"pt{tag}"


def _index(ip: Any, name: str) -> int | None:
    found = ip.link_lookup(ifname=name)
    return found[0] if found else None


def _ensure_bridge(ip: Any, leases: ipam.Leases) -> tuple[int, bool]:
    """The bridge's index (created if missing, up, with the gateway address); and whether it
    was created now."""
    index = _index(ip, leases.bridge)
    created = index is None
    if created:
        ip.link("add", ifname=leases.bridge, kind="bridge")
        index = _index(ip, leases.bridge)
    try:
        gateway = leases.gateway
        have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ip.get_addr(index=index)}
        if (str(gateway.ip), gateway.network.prefixlen) not in have:
            ip.addr("add", index=index, address=str(gateway.ip),
                    prefixlen=gateway.network.prefixlen)
        ip.link("set", index=index, state="up")
    except BaseException:
        if created:
            ip.link("del", index=index)
        raise
    return index, created


def _configure_inside(peer: str, address: Any, gateway: Any) -> None:
    """In the container's namespace (this process has joined it): eth0, lo, default route."""
    from pyroute2 import IPRoute

    with IPRoute() as inner:
        index = _index(inner, peer)
        if index is None:
            raise RuntimeFailure(f"{peer} did not arrive in the container's namespace")
        inner.link("set", index=index, ifname="eth0")
        inner.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
        inner.link("set", index=index, state="up")
        lo = _index(inner, "lo")
        if lo is not None:
            inner.link("set", index=lo, state="up")
        inner.route("add", dst="0.0.0.0/0", gateway=str(gateway.ip))


def connect(net_dir: Path, bridge: str, subnet: str, container: str, pid: int) -> str:
    """Give the container whose init is `pid` an address on `bridge`; returns it (CIDR)."""
    from pyroute2 import IPRoute, NetlinkError

    from ociruntime.linux import syscalls as sc

    try:
        netns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeFailure(f"network: container {container}: pid {pid}: {e.strerror}"
                             ) from None
    veth, peer = veth_names(net_dir, container)
    try:
        with ipam.locked(net_dir, bridge) as leases, IPRoute() as ip:
            leases.use_subnet(subnet)
            bridge_index, created = _ensure_bridge(ip, leases)
            try:
                leases.release(container)  # a lease left by a run that was never deleted
                if (stale := _index(ip, veth)) is not None:
                    ip.link("del", index=stale)
                address = leases.allocate(container, veth)
                ip.link("add", ifname=veth, kind="veth", peer=peer)
                ip.link("set", index=_index(ip, veth), master=bridge_index, state="up")
                ip.link("set", index=_index(ip, peer), net_ns_fd=netns)
                sc.setns(netns, sc.CLONE_NEWNET, f"/proc/{pid}/ns/net")
                _configure_inside(peer, address, leases.gateway)
            except BaseException as e:
                for name in (veth, peer):  # `ip` still talks to the host's namespace
                    if (index := _index(ip, name)) is not None:
                        ip.link("del", index=index)
                if created:
                    ip.link("del", index=bridge_index)
                if isinstance(e, NetlinkError):
                    raise RuntimeFailure(f"network: bridge {bridge}: {e}") from None
                raise
            leases.doc["created_bridge"] = leases.doc["created_bridge"] or created
            return str(address)
    finally:
        os.close(netns)


def disconnect(net_dir: Path, bridge: str, container: str) -> None:
    """Undo `connect` (idempotent)."""
    with ipam.locked(net_dir, bridge) as leases:
        gone = leases.release(container)
        drop_bridge = leases.doc["created_bridge"] and not leases.doc["leases"]
        if not gone and not drop_bridge:
            return
        from pyroute2 import IPRoute

        with IPRoute() as ip:
            for lease in gone:
                if (index := _index(ip, lease["veth"])) is not None:
                    ip.link("del", index=index)
            if drop_bridge:
                if (index := _index(ip, bridge)) is not None:
                    ip.link("del", index=index)
                leases.doc["created_bridge"] = False
