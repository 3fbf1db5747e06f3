"""Where a map-aware client sends each call: the key that decides it, and that key's replicas.

Pure: built from the RoutingMap any router or node answers (feed.proto), no I/O. Timeline reads
are spread over a key's replicas by key: each client reads a given timeline from one replica
(chosen by a hash of the key and the client's own salt) while it answers, so the pages of one
timeline come from one replica (a third replica that is a moment behind a write's quorum never
makes a later page older than an earlier one), and the many clients of a popular timeline spread
its reads over all its replicas (measured: sending every timeline read to the key's primary cost a
quarter of the read throughput under the bench's Zipf readers). Timelines are filled
asynchronously anyway, so a replica a moment behind costs nothing a reader can tell. The other
reads (a user's posts, profile, follow lists) go to the primary first: the primary coordinates the
writes of its keys and is always in their quorum, so what one process wrote another reads at once
(a user who posts from the CLI and lists their posts from a second command). Writes go to the
replicas in the map's order; client/map_aware.py sends a client's reads of a key it just wrote to
the replica that took the write.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

from common.partitioning import partition_of
from protos import feed_pb2

__all__ = ["RoutingTable", "KEY_FIELD", "READS", "SPREAD_READS"]

# Which request field decides where a Feed call goes (feed.proto's RoutingMap says the same).
KEY_FIELD = {
    "GetTimeline": "user",
    "WatchTimeline": "user",
    "GetUserPosts": "author",
    "Post": "author",
    "DeletePost": "author",
    "Follow": "follower",
    "Unfollow": "follower",
    "ListFollowers": "user",
    "ListFollowing": "user",
    "GetUser": "user",
    "Mute": "user",
    "Unmute": "user",
    "Block": "user",
    "Unblock": "user",
    "ListMuted": "user",
    "ListBlocked": "user",
}
READS = frozenset(
    {"GetTimeline", "GetUserPosts", "ListFollowers", "ListFollowing", "GetUser", "ListMuted", "ListBlocked"}
)
# The reads spread over a key's replicas (the rest start at the primary: see the module doc).
SPREAD_READS = frozenset({"GetTimeline"})


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
    """The order in which one client tries a key's replicas: for spread reads, starting at a replica
    chosen by the key and this client's salt (the same one every time), else in the map's order."""

    def __init__(self, salt: int | None = None) -> None:
        self.salt = random.getrandbits(32) if salt is None else salt

    def order(self, key: str, replicas: list[str], spread: bool) -> list[str]:
        if not spread or len(replicas) < 2:
            return replicas
        start = zlib.crc32(key.encode("utf-8"), self.salt) % len(replicas)
        return replicas[start:] + replicas[:start]
