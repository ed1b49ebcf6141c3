"""Addresses on a bridge's subnet, handed out under a lock file.

ROOT/net/<bridge>.json holds the subnet, whether this tool created the bridge, and the leases
(address -> container and host-side veth); ROOT/net/<bridge>.lock serializes every change. The
subnet's first host address is the gateway (on the bridge); containers get the next free ones.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os

from ociruntime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import Any


class Leases:
    """The lease file of one bridge, loaded under its lock."""

    def __init__(self, net_dir: Path, bridge: str) -> None:
        self.path = net_dir / f"{bridge}.json"
        self.bridge = bridge
        try:
            self.doc: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            self.doc = {"subnet": None, "created_bridge": False, "leases": {}}

    def use_subnet(self, subnet: str) -> ipaddress.IPv4Network:
        """The bridge's subnet; `subnet` must match the one its leases were made from."""
        try:
            net = ipaddress.IPv4Network(subnet)
        except ValueError as e:
            raise RuntimeFailure(f"--subnet {subnet}: {e}") from None
        if net.num_addresses < 4:
            raise RuntimeFailure(f"--subnet {subnet}: too small (a /30 at least)")
        current = self.doc["subnet"]
        if current and self.doc["leases"] and current != str(net):
            raise RuntimeFailure(f"bridge {self.bridge}: its containers use {current}, "
                                 f"not {net}")
        self.doc["subnet"] = str(net)
        return net

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.doc["subnet"])

    @property
    def gateway(self) -> ipaddress.IPv4Interface:
        """The bridge's own address: the subnet's first host."""
        net = self.network
        return ipaddress.IPv4Interface(f"{net.network_address + 1}/{net.prefixlen}")

    def allocate(self, owner: str, veth: str) -> ipaddress.IPv4Interface:
        """The lowest free address, leased to `owner`."""
        net = self.network
        taken = set(self.doc["leases"]) | {str(self.gateway.ip)}
        for host in net.hosts():
            if str(host) not in taken:
                self.doc["leases"][str(host)] = {"container": owner, "veth": veth}
                return ipaddress.IPv4Interface(f"{host}/{net.prefixlen}")
        raise RuntimeFailure(f"bridge {self.bridge}: no free address left in {net}")

    def release(self, owner: str) -> list[dict[str, str]]:
        """Drop the leases of `owner`; returns them (with their addresses)."""
        gone = [dict(v, address=k) for k, v in self.doc["leases"].items()
                if v["container"] == owner]
        for lease in gone:
            del self.doc["leases"][lease["address"]]
        return gone

    def of(self, owner: str) -> str | None:
        """The address leased to `owner`, if any."""
        return next((k for k, v in self.doc["leases"].items() if v["container"] == owner), None)

    def save(self) -> None:
        if not self.doc["leases"] and not self.doc["created_bridge"]:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(f".{os.getpid()}")
        tmp.write_text(json.dumps(self.doc, indent=1, sort_keys=True) + "\n")
        os.rename(tmp, self.path)


@contextlib.contextmanager
def locked(net_dir: Path, bridge: str) -> Iterator[Leases]:
    """The bridge's leases under its lock; saved when the block ends without an error."""
    net_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(net_dir / f"{bridge}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        leases = Leases(net_dir, bridge)
        yield leases
        leases.save()
    finally:
        os.close(fd)


def address_of(net_dir: Path, bridge: str, owner: str) -> str | None:
    """The address `owner` holds on `bridge` (read without the lock: for display)."""
    try:
        return Leases(net_dir, bridge).of(owner)
    except (OSError, ValueError):
        return None
