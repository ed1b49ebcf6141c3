"""`linux.netDevices` (runtime-spec 1.3): move host interfaces into the container's network
namespace, keeping their addresses, renaming them when asked, and bringing them up.

pyroute2 is imported here only, and this module only when netDevices are configured: it costs
more than a whole container start.
"""

from __future__ import annotations

import os

from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _addresses(ip: Any, index: int) -> list[tuple[str, int, int]]:
    return [(a.get_attr("IFA_ADDRESS"), a["prefixlen"], a["family"])
            for a in ip.get_addr(index=index)]


def move_devices(net_devices: dict[str, dict[str, Any]], netns_path: str) -> None:
    """Move each named host interface into the namespace at `netns_path` (parent side)."""
    from pyroute2 import IPRoute, NetlinkError

    ip = IPRoute()
    try:
        moves = []
        for host_name, spec in net_devices.items():
            found = ip.link_lookup(ifname=host_name)
            if not found:
                raise RuntimeFailure(f"linux.netDevices.{host_name}: no such host interface")
            index = found[0]
            target = (spec or {}).get("name") or host_name
            moves.append((index, host_name, target, _addresses(ip, index)))
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            for index, host_name, _, _ in moves:
                try:
                    ip.link("set", index=index, net_ns_fd=fd)
                except NetlinkError as e:
                    raise RuntimeFailure(
                        f"linux.netDevices.{host_name}: move into {netns_path}: {e}") from None
            _configure_inside(fd, moves)
        finally:
            os.close(fd)
    finally:
        ip.close()


def _configure_inside(netns_fd: int, moves: list[tuple[int, str, str, list]]) -> None:
    """In a child that joined the namespace: rename, re-add the addresses, set up."""
    from pyroute2 import IPRoute

    from ociruntime.linux import syscalls as sc

    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        error = b""
        try:
            os.close(read_end)
            sc.setns(netns_fd, sc.CLONE_NEWNET, "network")
            ip = IPRoute()
            for _, host_name, target, addrs in moves:
                found = ip.link_lookup(ifname=host_name)
                if not found:
                    raise RuntimeFailure(f"{host_name} did not arrive in the container")
                index = found[0]
                if target != host_name:
                    if ip.link_lookup(ifname=target):
                        raise RuntimeFailure(
                            f"linux.netDevices.{host_name}: name {target} already exists")
                    ip.link("set", index=index, ifname=target)
                for address, prefix, family in addrs:
                    ip.addr("add", index=index, address=address, prefixlen=prefix, family=family)
                ip.link("set", index=index, state="up")
            ip.close()
        except BaseException as e:  # noqa: BLE001 - reported through the pipe
            error = str(e).encode() or type(e).__name__.encode()
        os.write(write_end, error)
        os._exit(0)
    os.close(write_end)
    message = b""
    while chunk := os.read(read_end, 4096):
        message += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    if message:
        raise RuntimeFailure(f"linux.netDevices: {message.decode(errors='replace')}")
