"""Emulated hosts on one Linux machine: network namespaces joined by veth pairs to a bridge, and the
partitions a test inflicts on them (root only).

    hosts = Hosts("frn", "10.77.0")       # bridge frn-br at 10.77.0.1, hosts from 10.77.0.11
    hosts.create(["n1", "n2", "n3", "r0"])
    hosts.run_prefix("n1")                # ["ip", "netns", "exec", "frn-n1"]: run a process there
    hosts.isolate("n2")                   # n2 and the others cannot reach each other
    hosts.isolate_outbound("n2")          # n2's packets to the other hosts are dropped, theirs arrive
    hosts.split(["n1", "n2", "r0"], ["n3", "r1"])
    hosts.cut("r0", "n2")                 # both directions between two hosts
    hosts.heal()
    hosts.destroy()                       # every namespace and link with the prefix, even after a failed create

Partitions are blackhole routes inside the namespaces (this kernel has no iptables and no tc qdiscs
but routing needs no module): packets to a blocked address are dropped silently, so a caller sees
a hang until its timeout, as with a real cut cable. The root namespace (where tests and the CLI
run) reaches every host through the bridge and is never cut.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Hosts", "NetnsError", "available"]


class NetnsError(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result


def available() -> str:
    """Why this process may not create namespaces, or an empty string when it may."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = "frprobe"
    try:
        _ip("netns", "add", probe)
    except (NetnsError, OSError) as exc:
        return f"cannot create a network namespace: {exc}"
    _ip("netns", "del", probe, check=False)
    return ""


@dataclass
class Hosts:
    prefix: str  # at most 5 characters: interface names are limited to 15
    subnet: str  # the first three octets of a /24, e.g. "10.77.0"
    addresses: dict[str, str] = field(default_factory=dict)  # host name -> IP
    _blocked: set[tuple[str, str]] = field(default_factory=set)  # (host, address it cannot send to)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.1"

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def run_prefix(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(host)]

    def create(self, hosts: Iterable[str]) -> dict[str, str]:
        """A namespace per host with its own address on the bridge; returns host -> IP."""
        hosts = list(hosts)
        if len(hosts) > 200:
            raise NetnsError("at most 200 hosts per bridge")
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i, host in enumerate(hosts):
                ns, outside, inside = self.namespace(host), f"{self.prefix}{i}h", f"{self.prefix}{i}n"
                address = f"{self.subnet}.{11 + i}"
                _ip("netns", "add", ns)
                _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                _ip("link", "set", inside, "netns", ns)
                _ip("link", "set", outside, "master", self.bridge, "up")
                _ip("-n", ns, "link", "set", inside, "name", "eth0")
                _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                self.addresses[host] = address
        except BaseException:
            self.destroy()
            raise
        return dict(self.addresses)

    # -- partitions ------------------------------------------------------------------------------

    def block(self, host: str, to: str) -> None:
        """`host` can no longer send to `to` (a host name, or "root" for the machine itself)."""
        address = self.gateway if to == "root" else self.addresses[to]
        if (host, address) not in self._blocked:
            _ip("-n", self.namespace(host), "route", "add", "blackhole", f"{address}/32")
            self._blocked.add((host, address))

    def cut(self, a: str, b: str) -> None:
        self.block(a, b)
        self.block(b, a)

    def isolate(self, host: str) -> None:
        """No traffic between `host` and any other host (the root namespace still reaches it)."""
        for other in self.addresses:
            if other != host:
                self.cut(host, other)

    def isolate_outbound(self, host: str) -> None:
        """`host` receives from the others but what it sends them is dropped (a one-way partition)."""
        for other in self.addresses:
            if other != host:
                self.block(host, other)

    def split(self, *sides: Iterable[str]) -> None:
        """Hosts on different sides cannot reach each other; hosts on one side still can."""
        groups = [list(side) for side in sides]
        for i, side in enumerate(groups):
            for other in groups[i + 1 :]:
                for a in side:
                    for b in other:
                        self.cut(a, b)

    def heal(self) -> None:
        for host, address in sorted(self._blocked):
            _ip("-n", self.namespace(host), "route", "del", "blackhole", f"{address}/32", check=False)
        self._blocked.clear()

    # -- teardown --------------------------------------------------------------------------------

    def destroy(self) -> list[str]:
        """Removes every namespace and link whose name has this prefix (found by listing, so it also
        cleans up after a crashed run); returns what it removed."""
        removed = []
        for line in _ip("netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(f"{self.prefix}-"):
                _ip("netns", "del", name, check=False)
                removed.append(name)
        for line in _ip("-br", "link", check=False).stdout.splitlines():
            name = line.split()[0].split("@")[0] if line.split() else ""
            if name.startswith(self.prefix):
                _ip("link", "del", name, check=False)
                removed.append(name)
        self.addresses.clear()
        self._blocked.clear()
        return removed

    def leftovers(self) -> list[str]:
        namespaces = [line.split()[0] for line in _ip("netns", "list", check=False).stdout.splitlines() if line.strip()]
        links = [line.split()[0].split("@")[0] for line in _ip("-br", "link", check=False).stdout.splitlines() if line]
        return [n for n in namespaces + links if n.startswith(self.prefix)]
