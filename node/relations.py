"""Mutes and blocks on a node (families U, V, W), kept beside the user's inbox and follow edges.

Three versioned edges (node/versioned.py), all under the partition of the user they filter for:
- U ``user -> target``: user mutes target (target's posts hidden from user's timeline);
- V ``user -> target``: user blocked target;
- W ``user -> blocker``: blocker blocked user (written by the same Block as the blocker's V edge).

So the node holding a user's inbox holds everything that hides posts from it: a timeline read
filters with one scan per family (hidden_from), and a follow's edge write refuses to cross a block
in its own atomic batch (refusal), on the follower side and on the followee's home side, which is
what makes a block racing a follow end with no edge: each side's edge is written either before the
block's mark reached that partition (and the block's unfollow, which comes after its marks, removes
it) or after (and is refused). Inbox entries are not touched: unmuting brings the past posts back.
"""

from __future__ import annotations

from collections.abc import Callable

from common.versions import VersionClock
from node import keys
from node.batch import Batch, Batches
from node.sparse_families import SparseFamilies
from node.versioned import is_alive, read_edge, set_edge
from protos import storage_pb2

__all__ = ["Relations", "FAMILY_OF"]

FAMILY_OF = {
    storage_pb2.MUTES: keys.MUTES,
    storage_pb2.BLOCKS: keys.BLOCKS,
    storage_pb2.BLOCKED_BY: keys.BLOCKED_BY,
}


class Relations:
    def __init__(
        self, batches: Batches, partition: Callable[[str], int], clock: VersionClock, sparse: SparseFamilies
    ) -> None:
        self.batches = batches
        self.sparse = sparse
        self.store = batches.store
        self.partition = partition
        self.clock = clock

    def change(self, user: str, relation: storage_pb2.Relation, target: str, on: bool, version: int = 0) -> bool:
        """Turns one relation on or off; True if it changed (idempotent: the newest version wins)."""
        version = self.clock.stamp(version)
        part = self.partition(user)
        batch = self.batches.new()
        delta, _ = set_edge(batch, keys.edge_key(part, FAMILY_OF[relation], user, target), version, on)
        batch.commit()
        return delta != 0

    def hidden_from(self, user: str) -> set[bytes]:
        """The authors whose posts the user's timeline hides (encoded): muted, blocked, blocking."""
        part = self.partition(user)
        hidden: set[bytes] = set()
        for family in keys.RELATIONS:
            if not self.sparse.may_have(family, user):
                continue  # the common case: nobody this user muted, blocked or was blocked by
            prefix = keys.user_prefix(part, family, user)
            hidden.update(key[len(prefix) :] for key, raw in self.store.scan(prefix) if is_alive(raw))
        return hidden

    def refusal(self, batch: Batch, part: int, user: str, other: str) -> storage_pb2.Relation:
        """In a follow's batch on `user`'s partition: BLOCKS if user blocked other, BLOCKED_BY if other
        blocked user, else 0 (either direction of follow between them is refused)."""
        if is_alive(batch.get(keys.edge_key(part, keys.BLOCKS, user, other))):
            return storage_pb2.BLOCKS
        if is_alive(batch.get(keys.edge_key(part, keys.BLOCKED_BY, user, other))):
            return storage_pb2.BLOCKED_BY
        return storage_pb2.RELATION_UNSPECIFIED

    # -- repair merge rule (node/repair.py) ------------------------------------------------------

    def merge_relation(self, key: bytes, value: bytes) -> int:
        """Another replica's mute or block edge: the newer version wins."""
        theirs = read_edge(value)
        assert theirs is not None
        batch = self.batches.new()
        _, before = set_edge(batch, key, theirs.version, theirs.alive)  # writes nothing unless newer
        batch.commit()
        return int(before is None or before.version < theirs.version)
