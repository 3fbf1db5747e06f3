"""A node's data, over one Store: the storage pieces, each one family or two, built bottom-up.

    registry  node/hot_registry.py   hot-user registry (H), salted keys' follower counts (S)
    posts     node/posts.py          posts by author key (P), their tombstones (Y)
    inboxes   node/inboxes.py        timelines by consumer (I: entries and their tombstones)
    readers   node/readers.py        when each reader last read (A); who is inactive now
    relations node/relations.py      mutes (U), blocks (V) and who blocked a user (W)
    graph     node/follow_graph.py   follow edges (F, G), merged-at-read marks (K)
    deliveries node/delivery_log.py  work each post or delete still owes its followers (D)

Each piece is given only what it writes with (``Batches``), the partition function, the version
clock, and the pieces below it; per-user counters (M) move with the keys in every piece's batches.
Every write is one atomic batch and idempotent (keys carry post ids and user pairs; counters move
only when a key appears or goes), which is what lets deliveries retry and overlap, and partitions
stream while written. Each piece also holds the repair merge rules of its families (node/repair.py).
"""

from __future__ import annotations

from collections.abc import Callable

from common.hot_state import HotPolicy
from common.partitioning import partition_of
from common.versions import VersionClock
from node import keys, tombstones
from node.batch import Batches, UserCounters
from node.delivery_log import DeliveryLog, FinishedEarly
from node.follow_graph import FollowGraph
from node.hot_registry import HotRegistry
from node.inboxes import Inboxes, TimelineListener
from node.posts import Posts
from node.readers import Readers
from node.relations import Relations
from node.sparse_families import SparseFamilies
from node.store import Store
from node.versioned import is_alive

__all__ = ["FeedStore", "MergeRule"]

# Merges one key of another replica into this one; 1 if it changed something here.
MergeRule = Callable[[bytes, bytes], int]


class FeedStore:
    def __init__(
        self,
        store: Store,
        partitions: int,
        timeline_cap: int,
        hot_policy: HotPolicy | None = None,
        inactive_after_ms: int = 0,
        sparse: SparseFamilies | None = None,
    ) -> None:
        self.store = store
        # Who has mutes, blocks or a registry entry at all (node/sparse_families.py); a store that
        # is not a node's ObservedStore gets one never loaded: it answers "maybe" to everything.
        self.sparse = sparse or SparseFamilies()
        self.partitions = partitions
        self.clock = VersionClock()  # versions of edges and registry entries written here
        self.batches = Batches(store)
        self.registry = HotRegistry(self.batches, self.partition, self.clock, hot_policy or HotPolicy(), self.sparse)
        finished_early = FinishedEarly()  # finishes that came before their records (node/delivery_log.py)
        self.posts = Posts(self.batches, self.partition, self.registry, finished_early)
        self.readers = Readers(self.batches, self.partition, inactive_after_ms)
        self.inboxes = Inboxes(self.batches, self.partition, timeline_cap, self.readers.inactive)
        self.relations = Relations(self.batches, self.partition, self.clock, self.sparse)
        self.graph = FollowGraph(
            self.batches,
            self.partition,
            self.clock,
            self.registry,
            self.inboxes,
            self.posts,
            self.relations,
            self.readers,
        )
        self.deliveries = DeliveryLog(self.batches, self.partition, finished_early)
        self.tombstones_collected = 0  # since start (node/tombstones.py)

    def partition(self, key: str) -> int:
        return partition_of(key, self.partitions)

    def on_timeline_change(self, listener: TimelineListener) -> None:
        """`listener` is told the users whose home timelines a write here changed (inbox entries,
        removals and unfollows, their own posts): the Feed API's watch streams (feed/watch_hub.py)."""
        self.inboxes.changed = listener
        self.posts.changed = listener

    def counters(self, user_key: str) -> UserCounters | None:
        return self.batches.user_counters(self.partition(user_key), user_key)

    def collect_tombstones(self, found: list[bytes], horizon: int) -> int:
        """Deletes the tombstones among `found` still older than `horizon` as stored (a scan saw
        them; a write since, a follow again, may have replaced one). Returns how many went."""
        batch = self.batches.new()
        gone = 0
        for key in found:
            value = batch.get(key)
            if value is not None and tombstones.collectable(key, value, horizon):
                gone += batch.delete_existing(key)
        batch.commit()
        self.tombstones_collected += gone
        return gone

    def merge_rules(self) -> dict[bytes, MergeRule]:
        """Each replicated family's merge rule, in the order a repair applies them: tombstones first
        (they beat what they delete), then edges (inboxes follow them), then the rest."""
        return {
            keys.POST_TOMBSTONES: self.posts.merge_tombstone,
            keys.FOLLOWING: self.graph.merge_edge,
            keys.FOLLOWERS: self.graph.merge_edge,
            keys.HOT_FOLLOWING: self.graph.merge_edge,
            keys.ACTIVITY: self.readers.merge_record,
            keys.MUTES: self.relations.merge_relation,
            keys.BLOCKS: self.relations.merge_relation,
            keys.BLOCKED_BY: self.relations.merge_relation,
            keys.HOT_REGISTRY: self.registry.merge_entry,
            keys.SALT_COUNTS: self.registry.merge_salt_count,
            keys.POSTS: self.posts.merge_post,
            keys.INBOX: self.inboxes.merge_entry,
        }

    def recount_counters(self, partition: int) -> int:
        """Rewrites every counter of the partition from the keys it holds (after a transfer merged with
        direct writes, the counters copied from the source no longer match). Returns users recounted."""
        counts: dict[str, UserCounters] = {}
        for key, value in self.store.scan(keys.partition_prefix(partition)):
            family = keys.family_of(key)
            if family == keys.META:
                old = UserCounters.decode(value)
                counts.setdefault(keys.meta_user_of(key), UserCounters()).edge_version = old.edge_version
                continue
            user = keys.user_of(key).decode("utf-8")
            if family == keys.POSTS:
                counts.setdefault(user, UserCounters()).post_count += 1
            elif family in (keys.FOLLOWERS, keys.FOLLOWING) and is_alive(value):
                counters = counts.setdefault(user, UserCounters())
                if family == keys.FOLLOWERS:
                    counters.follower_count += 1
                else:
                    counters.following_count += 1
        batch = self.batches.new()
        for user, counters in counts.items():
            batch.counters[keys.meta_key(partition, user)] = counters
        batch.commit()
        return len(counts)
