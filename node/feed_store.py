"""The node's data model: posts by author, inboxes by consumer, counters and the hot-user registry;
follow edges are its ``graph`` (node/follow_graph.py), atomic writes are ``Batch``es (node/batch.py).

Each method is one atomic batch over the Store, and each is idempotent: posts and inbox entries are
keyed by post id, edges by the pair of users, and counters only move when a key appears or goes.
That is what lets deliveries retry and overlap, and partitions stream while written.

Two rules keep concurrent operations from resurrecting data:
- an inbox accepts a post only while its consumer follows the post's author (the ``following``
  edge lives in the consumer's partition, beside the inbox), so a fan-out that lands after an
  unfollow is dropped;
- removing a post from an inbox leaves a tombstone, so a fan-out that lands after the delete is
  dropped too.

Posts are stored as ``feed_pb2.Post`` bytes: the storage record and the wire message are one format.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import Counter
from collections.abc import Iterable

from common import post_bytes, salting
from common.hot_state import HotPolicy, HotState, HotUser
from common.partitioning import partition_of
from common.versions import VersionClock
from node import delivery_log, keys
from node.batch import SALT_COUNT, Batch, UserCounters
from node.change_feed import ObservedStore
from node.follow_graph import FollowGraph
from node.store import Snapshot, Store
from node.versioned import is_alive, read_registry, registry_value, set_edge
from protos import feed_pb2, storage_pb2

__all__ = ["FeedStore"]

_HOT_LIST_MAX_AGE_S = 5.0


class FeedStore:
    def __init__(
        self,
        store: Store,
        partitions: int,
        timeline_cap: int,
        hot_policy: HotPolicy | None = None,
    ) -> None:
        self.store = store
        self.partitions = partitions
        self.timeline_cap = timeline_cap
        self.hot_policy = hot_policy or HotPolicy()
        self.graph = FollowGraph(self)
        self.clock = VersionClock()  # versions of edges and registry entries written here
        # Keys per family on this node, for status; counted once at start, then kept current.
        self.family_counts: Counter[bytes] = Counter()
        self._recounts: list[Counter[bytes]] = []  # what commits while a recount runs
        self._hot_list: tuple[int, frozenset[int], float, list[HotUser]] | None = None

    def partition(self, key: str) -> int:
        return partition_of(key, self.partitions)

    def count_keys(self) -> None:
        """Counts every key per family (at start, before anything writes)."""
        self.family_counts.clear()
        self.family_counts.update(_count(self.store))

    async def recount_keys(self) -> None:
        """Counts every key per family again, while writes go on (after a transfer's raw copy or a
        drop): a snapshot is counted in a thread, and what commits meanwhile is added to it."""
        snapshot = self.store.snapshot()
        since: Counter[bytes] = Counter()
        self._recounts.append(since)
        try:
            counts = await asyncio.to_thread(_count, snapshot)
        finally:
            # By identity: two recounts' tallies can be equal (list.remove would drop the other's).
            self._recounts = [tally for tally in self._recounts if tally is not since]
            snapshot.close()
        counts.update(since)
        self.family_counts.clear()
        self.family_counts.update(counts)

    def stamp(self, version: int) -> int:
        """The version a write applies with: the one the coordinating node gave it, or a new one."""
        if version:
            self.clock.observe(version)
            return version
        return self.clock.next()

    def new_batch(self) -> Batch:
        """An atomic write, readable before it is committed; it keeps the family counts current."""
        return Batch(self.store, [self.family_counts, *self._recounts])

    # -- posts, by author ------------------------------------------------------------------------

    def store_post(self, author_key: str, post: feed_pb2.Post) -> tuple[bool, HotState]:
        """Stores the post and, in the same atomic write, the record of the delivery it owes (none
        for a HOT author: followers merge its posts at read time). Returns (created, the key's hot
        state). A retried store finds the post and writes nothing: the first write had both."""
        part = self.partition(author_key)
        batch = self.new_batch()
        state, _ = self._registry(batch, part, author_key)
        if batch.get(keys.post_key(part, keys.POST_TOMBSTONES, author_key, post.id)) is not None:
            return False, state  # deleted already (the delete reached this replica first)
        created = batch.put_new(keys.post_key(part, keys.POSTS, author_key, post.id), post.SerializeToString())
        if created:
            batch.counters_of(part, author_key).post_count += 1
            author, salted_key = salting.home_of(author_key)
            if salted_key:  # stored salted because a router believed the author HOT
                owed = delivery_log.insert(post, author, salted=True, unless_hot=True)
            elif state.fans_out:
                owed = delivery_log.insert(post, author, salted=state.salted)
            else:
                owed = None
            if owed is not None:
                batch.put_new(keys.delivery_key(part, author_key, post.id, owed.kind), owed.SerializeToString())
        batch.commit()
        return created, state

    def remove_post(self, author_key: str, post_id: int) -> feed_pb2.Post | None:
        """Removes the post, leaving a tombstone (so a copy of the store arriving later, from a hint
        or a repair, cannot bring it back), and in the same write records its removal from every
        follower's inbox (replacing an insert still owed). Also for a post stored while its author
        was hot: a cool-down may have copied it into inboxes since. None if the post was not here."""
        part = self.partition(author_key)
        key = keys.post_key(part, keys.POSTS, author_key, post_id)
        batch = self.new_batch()
        batch.put_new(keys.post_key(part, keys.POST_TOMBSTONES, author_key, post_id), b"")
        raw = batch.get(key)
        if raw is None:
            batch.commit()
            return None
        state, _ = self._registry(batch, part, author_key)
        batch.delete_existing(key)
        batch.counters_of(part, author_key).post_count -= 1
        author, salted_key = salting.home_of(author_key)
        owed = delivery_log.retract(post_id, author, salted=salted_key or state.salted)
        batch.delete_existing(keys.delivery_key(part, author_key, post_id, delivery_log.INSERT))
        batch.put_new(keys.delivery_key(part, author_key, post_id, owed.kind), owed.SerializeToString())
        batch.commit()
        post: feed_pb2.Post = feed_pb2.Post.FromString(raw)
        return post

    def read_posts(self, author_key: str, limit: int, before_id: int = 0, more_keys: Iterable[str] = ()) -> list[bytes]:
        """Newest first, merged over the author's salted keys when `more_keys` names them."""
        all_keys = [author_key, *more_keys]
        if len(all_keys) == 1:
            return self._newest(self.partition(author_key), keys.POSTS, author_key, limit, before_id)
        streams = [
            [(post_bytes.post_id(raw), raw) for raw in self._newest(self.partition(k), keys.POSTS, k, limit, before_id)]
            for k in all_keys
        ]
        merged = heapq.merge(*streams, key=lambda item: -item[0])
        return [raw for _, raw in list(merged)[:limit]]

    # -- inboxes, by consumer --------------------------------------------------------------------

    def insert_inbox(self, posts: Iterable[feed_pb2.Post], consumers: Iterable[str]) -> int:
        """Inserts every post into every consumer's inbox that follows its author; trims each to the cap.
        The edge and tombstone are read from the store directly: this batch writes neither."""
        entries = [(post.author, post.id, post.SerializeToString()) for post in posts]
        batch = self.new_batch()
        get = self.store.get
        inserted = 0
        over_cap: list[tuple[int, str, list[bytes]]] = []
        for consumer in consumers:
            part = self.partition(consumer)
            counters = None
            added = []
            for author, post_id, raw in entries:
                edge, tombstone, inbox = keys.inbox_entry_keys(part, consumer, author, post_id)
                if not is_alive(get(edge)):
                    continue  # not (or no longer) a follower: never resurrect after an unfollow
                if get(tombstone) is not None:
                    continue  # deleted while this fan-out was in flight
                if batch.put_new(inbox, raw):
                    counters = counters or batch.counters_of(part, consumer)
                    counters.inbox_size += 1
                    added.append(inbox)
            inserted += len(added)
            if counters is not None and counters.inbox_size > self.timeline_cap:
                over_cap.append((part, consumer, added))
        for part, consumer, added in over_cap:
            self._trim_inbox(batch, part, consumer, added)
        batch.commit()
        return inserted

    def _trim_inbox(self, batch: Batch, part: int, consumer: str, added: list[bytes]) -> None:
        """Deletes the consumer's oldest entries down to the cap: among those stored and those this
        batch `added` (the batch deletes none of this consumer's before its trim)."""
        counters = batch.counters_of(part, consumer)
        excess = counters.inbox_size - self.timeline_cap
        stored = [k for k, _ in self._first_keys(keys.user_prefix(part, keys.INBOX, consumer), excess)]
        for key in sorted({*stored, *added})[:excess]:
            if batch.delete_existing(key):
                counters.inbox_size -= 1

    def _first_keys(self, prefix: bytes, count: int) -> list[tuple[bytes, bytes]]:
        out = []
        for item in self.store.scan(prefix):
            out.append(item)
            if len(out) >= count:
                break
        return out

    def remove_from_inboxes(self, post_id: int, consumers: Iterable[str]) -> int:
        batch = self.new_batch()
        removed = 0
        for consumer in consumers:
            part = self.partition(consumer)
            batch.put(keys.post_key(part, keys.DELETED, consumer, post_id), b"")
            if batch.delete_existing(keys.post_key(part, keys.INBOX, consumer, post_id)):
                batch.counters_of(part, consumer).inbox_size -= 1
                removed += 1
        batch.commit()
        return removed

    def read_inbox(self, consumer: str, limit: int, before_id: int = 0) -> tuple[list[bytes], list[str]]:
        """The newest inbox entries and, read in the same step, the followees merged at read time."""
        part = self.partition(consumer)
        return (
            self._newest(part, keys.INBOX, consumer, limit, before_id),
            self._edges(part, keys.HOT_FOLLOWING, consumer),
        )

    def finish_delivery(self, key: bytes, up_to_version: int | None = None) -> int:
        """Removes a delivery record another replica finished; with `up_to_version`, only if no newer
        change has rewritten it since. Returns 1 if removed."""
        batch = self.new_batch()
        raw = batch.get(key)
        if raw is None or (up_to_version is not None and storage_pb2.Delivery.FromString(raw).version > up_to_version):
            return 0
        batch.delete_existing(key)
        batch.commit()
        return 1

    # -- follower counts ---------------------------------------------------------------------------

    def report_follower_count(self, user: str, salted_key: str, count: int, version: int) -> HotState:
        """A salted key's follower count, as its node reports it; the newest version wins."""
        part = self.partition(user)
        batch = self.new_batch()
        entry = keys.edge_key(part, keys.SALT_COUNTS, user, salted_key)
        raw = batch.get(entry)
        if raw is None or SALT_COUNT.unpack(raw)[1] < version:
            raw = SALT_COUNT.pack(count, version)
            if not batch.put_new(entry, raw):
                batch.put(entry, raw)
        home = batch.counters_of(part, user).follower_count
        state = self.evaluate_hot(batch, part, user, home + self.salted_followers(part, user, {entry: raw}))
        batch.commit()
        return state

    def salted_followers(self, part: int, user: str, written: dict[bytes, bytes] | None = None) -> int:
        """The follower edges under a user's salted keys, as last reported to its home (with the
        reports `written` by a batch not yet committed)."""
        reports = dict(self.store.scan(keys.user_prefix(part, keys.SALT_COUNTS, user)))
        reports.update(written or {})
        return sum(SALT_COUNT.unpack(raw)[0] for raw in reports.values())

    def follower_count(self, user: str) -> int:
        """A user's followers: its home key's edges plus its salted keys' reported counts."""
        part = self.partition(user)
        counters = self.user_counters(user)
        return (counters.follower_count if counters else 0) + self.salted_followers(part, user)

    # -- counters --------------------------------------------------------------------------------

    def user_counters(self, user_key: str) -> UserCounters | None:
        raw = self.store.get(keys.meta_key(self.partition(user_key), user_key))
        return UserCounters.decode(raw) if raw is not None else None

    # -- hot users -------------------------------------------------------------------------------

    def _registry(self, batch: Batch, part: int, user: str) -> tuple[HotState, bool]:
        entry = read_registry(batch.get(keys.registry_key(part, user)))
        if entry is None:
            return HotState.NORMAL, False
        return HotState(entry.state), entry.pinned

    def _set_registry(
        self, batch: Batch, part: int, user: str, state: HotState, pinned: bool, version: int = 0
    ) -> None:
        key = keys.registry_key(part, user)
        value = registry_value(int(state), pinned, version or self.clock.next())
        if not batch.put_new(key, value):
            batch.put(key, value)

    def evaluate_hot(self, batch: Batch, part: int, user: str, follower_count: int) -> HotState:
        """Starts a transition when the follower count crosses a mark (common/hot_state.py's policy)."""
        state, pinned = self._registry(batch, part, user)
        after = self.hot_policy.next_state(state, pinned, follower_count)
        if after is not state:
            self._set_registry(batch, part, user, after, pinned)
        return after

    def hot_state(self, user: str) -> HotState:
        return self._registry(self.new_batch(), self.partition(user), user)[0]

    def set_hot_state(
        self, user: str, state: HotState, expect: Iterable[HotState] = (), pin: bool = False, version: int = 0
    ) -> tuple[HotState, bool]:
        """Compare-and-set: with `expect`, only from one of those states (on the coordinating node).
        Without, the newest version wins (a replica applying what its coordinator decided).
        Returns (state, changed)."""
        version = self.stamp(version)
        part = self.partition(user)
        batch = self.new_batch()
        entry = read_registry(batch.get(keys.registry_key(part, user)))
        current = HotState(entry.state) if entry else HotState.NORMAL
        pinned = entry.pinned if entry else False
        expected = set(expect)
        if expected and current not in expected:
            return current, False
        if not expected and entry is not None and entry.version >= version:
            return current, False
        self._set_registry(batch, part, user, state, pinned or pin, version)
        batch.counters_of(part, user)
        batch.commit()
        return state, current != state

    def registry_entry(self, user: str) -> tuple[HotState, bool, int]:
        """(state, pinned, version) of a user's registry entry."""
        entry = read_registry(self.store.get(keys.registry_key(self.partition(user), user)))
        return (HotState(entry.state), entry.pinned, entry.version) if entry else (HotState.NORMAL, False, 0)

    def list_hot_users(self, partitions: Iterable[int]) -> list[HotUser]:
        """Every registry entry of `partitions`. Every router polls every node twice a second, and a
        scan costs one LevelDB seek per partition, so the answer is kept until a write touches the
        registry (follower counts in it may lag by up to _HOT_LIST_MAX_AGE_S)."""
        parts = frozenset(partitions)
        generation = self.store.registry_generation if isinstance(self.store, ObservedStore) else None
        cached = self._hot_list
        if (
            generation is not None
            and cached is not None
            and cached[:2] == (generation, parts)
            and time.monotonic() - cached[2] < _HOT_LIST_MAX_AGE_S
        ):
            return cached[3]
        entries = self._scan_hot_users(parts)
        if generation is not None:
            self._hot_list = (generation, parts, time.monotonic(), entries)
        return entries

    def _scan_hot_users(self, partitions: frozenset[int]) -> list[HotUser]:
        entries = []
        for part in sorted(partitions):
            prefix = keys.registry_prefix(part)
            for key, raw in self.store.scan(prefix):
                user = key[len(prefix) :].decode("utf-8")
                entry = read_registry(raw)
                assert entry is not None
                entries.append(
                    HotUser(user, HotState(entry.state), entry.pinned, self.follower_count(user), entry.version)
                )
        return entries

    def set_hot_following(
        self,
        followee: str,
        consumers: Iterable[str],
        hot: bool,
        posts: Iterable[feed_pb2.Post] = (),
        version: int = 0,
    ) -> int:
        """Marks `followee` merged-at-read for each consumer who follows it, or (hot=False) copies
        `posts` into their inboxes and then unmarks it, so no post disappears in between."""
        version = self.stamp(version)
        consumers = list(consumers)
        if not hot:
            self.insert_inbox(posts, consumers)
        batch = self.new_batch()
        changed = 0
        for consumer in consumers:
            part = self.partition(consumer)
            key = keys.edge_key(part, keys.HOT_FOLLOWING, consumer, followee)
            if hot:
                if is_alive(batch.get(keys.edge_key(part, keys.FOLLOWING, consumer, followee))):
                    changed += max(set_edge(batch, key, version, True)[0], 0)
            elif batch.get(key) is not None:
                changed += max(-set_edge(batch, key, version, False)[0], 0)
        batch.commit()
        return changed

    # -- helpers ---------------------------------------------------------------------------------

    def _newest(self, part: int, family: bytes, user_key: str, limit: int, before_id: int) -> list[bytes]:
        prefix = keys.user_prefix(part, family, user_key)
        start = keys.post_key(part, family, user_key, before_id - 1) if before_id else None
        out = []
        for _, raw in self.store.scan(prefix, start=start, reverse=True):
            out.append(raw)
            if len(out) >= limit:
                break
        return out

    def _edges(self, part: int, family: bytes, user_key: str) -> list[str]:
        prefix = keys.user_prefix(part, family, user_key)
        return [keys.edge_user_of(key, len(prefix)) for key, raw in self.store.scan(prefix) if is_alive(raw)]


def _count(store: Store | Snapshot) -> Counter[bytes]:
    counts: Counter[bytes] = Counter()
    for key, _ in store.scan(b""):
        if not key.startswith(b"\xff\xff"):
            counts[keys.family_of(key)] += 1
    return counts
