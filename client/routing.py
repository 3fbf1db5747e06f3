"""Where a map-aware client sends each call: the key that decides it, and that key's replicas.

Pure: built from the RoutingMap any router or node answers (feed.proto), no I/O. A timeline read
from a client with no other call outstanding goes to the node this client prefers among the key's
replicas (a ranking of the nodes by the client's own salt, the same for every key): a client that
calls one at a time keeps to one node, which stays warm between its calls (measured on these two
cores: reads sent one at a time to one node took 0.94 ms p50, the same reads sent round three
nodes 1.06 ms). A client with calls in flight spreads its timeline reads over a key's replicas by
key (a hash of the key and the client's salt), and many clients spread by their salts (measured:
sending every timeline read to the key's primary cost a quarter of the read throughput under the
bench's Zipf readers; sending each to the replica with the fewest of the client's calls outstanding
gained a fifth in throughput on these two cores, by piling work on whichever node answered
fastest, and doubled the read p99). Either way the pages of one timeline usually come from one
replica; a replica a moment behind a write's quorum lacks the newest entries, which a later page
(older than the cursor) does not show. Timelines are filled asynchronously anyway, so a replica a
moment behind costs nothing a reader can tell. The other reads (a user's posts, profile, follow
lists) go to the primary first: the primary coordinates the writes of its keys and is always in
their quorum, so what one process wrote another reads at once (a user who posts from the CLI and
lists their posts from a second command). Writes go to the replicas in the map's order;
client/map_aware.py sends a client's reads of a key it just wrote to the replica that took the
write.
"""

from __future__ import annotations

import random
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
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
    """The order in which one client tries a key's replicas (see the module doc). Thread-safe: a
    blocking client may be shared by threads."""

    def __init__(self, salt: int | None = None) -> None:
        self.salt = random.getrandbits(32) if salt is None else salt
        self.outstanding = 0  # this client's calls sent and not answered yet
        self._rank: dict[str, int] = {}
        self._lock = threading.Lock()

    def order(self, key: str, replicas: list[str], spread: bool) -> list[str]:
        """`replicas` (the primary first) in the order to try them: for spread reads, the node this
        client prefers when it has no call outstanding, else the one its salt and the key choose;
        other calls as given."""
        if not spread or len(replicas) < 2:
            return replicas
        if not self.outstanding:
            return sorted(replicas, key=self._rank_of)
        start = zlib.crc32(key.encode("utf-8"), self.salt) % len(replicas)
        return replicas[start:] + replicas[:start]

    def started(self) -> None:
        """A call was sent (until ended())."""
        with self._lock:
            self.outstanding += 1

    def ended(self) -> None:
        with self._lock:
            self.outstanding -= 1

    @contextmanager
    def sending(self) -> Iterator[None]:
        """A call outstanding while the block runs."""
        self.started()
        try:
            yield
        finally:
            self.ended()

    def _rank_of(self, address: str) -> int:
        rank = self._rank.get(address)
        if rank is None:
            rank = self._rank[address] = zlib.crc32(address.encode("utf-8"), self.salt)
        return rank
