"""Where a map-aware client sends each call: the key that decides it, and that key's replicas.

Pure: built from the RoutingMap any router or node answers (feed.proto), no I/O. Reads are spread
over a key's replicas by key: each client reads a given key from one replica (chosen by a hash of
the key and the client's own salt) while it answers, so the pages of one timeline come from one
replica (a third replica that is a moment behind a write's quorum never makes a later page older
than an earlier one), and the many clients of a popular key spread its reads over all its
replicas (measured: sending every read to the key's primary cost a quarter of the read throughput
under the bench's Zipf readers). Writes go to the replicas in the map's order (any replica
coordinates a write: its primary saves a forward); client/map_aware.py sends a client's reads of a
key it just wrote to the replica that took the write.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

from common.partitioning import partition_of
from protos import feed_pb2

__all__ = ["RoutingTable", "KEY_FIELD", "READS"]

# Which request field decides where a Feed call goes (feed.proto's RoutingMap says the same).
KEY_FIELD = {
    "GetTimeline": "user",
    "GetUserPosts": "author",
    "Post": "author",
    "DeletePost": "author",
    "Follow": "follower",
    "Unfollow": "follower",
    "ListFollowers": "user",
    "ListFollowing": "user",
    "GetUser": "user",
}
READS = frozenset({"GetTimeline", "GetUserPosts", "ListFollowers", "ListFollowing", "GetUser"})


@dataclass(frozen=True)
class RoutingTable:
    epoch: int
    partitions: int
    addresses: tuple[str, ...]  # each node's Feed address ("" : it serves none), by index
    table: tuple[tuple[int, ...], ...]  # each partition's replicas, as indexes into `addresses`

    @classmethod
    def from_proto(cls, msg: feed_pb2.RoutingMap) -> RoutingTable:
        return cls(
            epoch=msg.epoch,
            partitions=msg.partitions,
            addresses=tuple(n.feed_address for n in msg.nodes),
            table=tuple(tuple(r.nodes) for r in msg.table),
        )

    @property
    def usable(self) -> bool:
        """Whether any node serves the Feed API (else every call goes to the router)."""
        return bool(self.partitions) and any(self.addresses)

    def replicas(self, key: str) -> list[str]:
        """The Feed addresses of the key's replicas that serve one, the primary first."""
        if not self.usable:
            return []
        out = [self.addresses[i] for i in self.table[partition_of(key, self.partitions)]]
        return [a for a in out if a]

    def all_addresses(self) -> list[str]:
        return [a for a in self.addresses if a]


class Spread:
    """The order in which one client tries a key's replicas: for reads, starting at a replica chosen
    by the key and this client's salt (the same one every time), for writes in the map's order."""

    def __init__(self, salt: int | None = None) -> None:
        self.salt = random.getrandbits(32) if salt is None else salt

    def order(self, key: str, replicas: list[str], read: bool) -> list[str]:
        if not read or len(replicas) < 2:
            return replicas
        start = zlib.crc32(key.encode("utf-8"), self.salt) % len(replicas)
        return replicas[start:] + replicas[:start]
