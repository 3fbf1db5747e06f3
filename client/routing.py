"""Where a map-aware client sends each call: the key that decides it, and that key's replicas.

Pure: built from the RoutingMap any router or node answers (feed.proto), no I/O. Calls go to a
key's replicas in the map's order: the primary first, the others while it does not answer. Reads
spread over every node by partition (each node is the primary of its share of them), and a key's
reads and writes meet on one replica: the coordinator of a write applies it before answering,
while the third replica of a quorum write may be a moment behind it (measured: spreading one
key's reads over its replicas showed acknowledged unfollows and posts missing from a third replica
until hints or repair caught it up). A router routes the same way.
"""

from __future__ import annotations

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
