"""Follow edges on a node: the follower side (G, beside the follower's inbox) and the followee side
(F, under the followee's home or salted key), with the counts that move with them.

Every method is one atomic batch and idempotent: an edge is keyed by its two users and counters move
only when it appears or goes. Edges carry versions (node/versioned.py): replicas applying the same
follows and unfollows in any order end with the same edges. The follower-side edge keeps the
followee key its other side went to, so a follow repeated, or retried after failing midway, finds
the same key again. A salted key's
edge changes owe its user's home a count report (a durable record, node/delivery_log.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from common import salting
from common.hot_state import HotState
from node import delivery_log, keys
from node.batch import Batch
from node.versioned import is_alive, read_edge, set_edge
from protos import feed_pb2

if TYPE_CHECKING:  # the feed store creates its follow graph
    from node.feed_store import FeedStore

__all__ = ["FollowGraph"]


class FollowGraph:
    def __init__(self, feed_store: FeedStore) -> None:
        self.feed_store = feed_store

    def add_following(
        self, follower: str, followee: str, hot: bool = False, followee_key: str = "", version: int = 0
    ) -> tuple[bool, str]:
        """Writes the follower-side edge, keeping with it the followee key its other side goes to.
        Returns (created, the key kept: `followee_key`, or the one an existing edge was made with)."""
        version = self.feed_store.stamp(version)
        part = self.feed_store.partition(follower)
        batch = self.feed_store.new_batch()
        edge = keys.edge_key(part, keys.FOLLOWING, follower, followee)
        before = read_edge(batch.get(edge))
        counters = batch.counters_of(part, follower)  # the user exists from now on either way
        if before is not None and before.alive:
            set_edge(batch, edge, version, True)  # newer than an unfollow that may still arrive
            kept: str | None = before.extra.decode("utf-8")
        else:
            delta, _ = set_edge(batch, edge, version, True, followee_key.encode("utf-8"))
            counters.following_count += delta
            kept = None
        if hot and is_alive(batch.get(edge)):
            set_edge(batch, keys.edge_key(part, keys.HOT_FOLLOWING, follower, followee), version, True)
        batch.commit()
        return kept is None and is_alive(batch.get(edge)), followee_key if kept is None else kept

    def remove_following(self, follower: str, followee: str, version: int = 0) -> tuple[bool, str]:
        """Removes the edge (leaving a dead one with its version) and every post of `followee` from
        the follower's inbox. Returns (removed, the followee key kept with the edge)."""
        version = self.feed_store.stamp(version)
        part = self.feed_store.partition(follower)
        batch = self.feed_store.new_batch()
        delta, before = set_edge(batch, keys.edge_key(part, keys.FOLLOWING, follower, followee), version, False)
        if delta < 0:
            self.unfollowed(batch, part, follower, followee, version)
        batch.commit()
        return delta < 0, (before.extra if before is not None else b"").decode("utf-8")

    def unfollowed(self, batch: Batch, part: int, follower: str, followee: str, version: int) -> None:
        """What an edge going dead takes with it: the count, the merged-at-read mark, the inbox copies."""
        counters = batch.counters_of(part, follower)
        counters.following_count -= 1
        hot_mark = keys.edge_key(part, keys.HOT_FOLLOWING, follower, followee)
        if batch.get(hot_mark) is not None:
            set_edge(batch, hot_mark, version, False)
        for key, raw in self.feed_store.store.scan(keys.user_prefix(part, keys.INBOX, follower)):
            if feed_pb2.Post.FromString(raw).author == followee and batch.delete_existing(key):
                counters.inbox_size -= 1

    def add_follower(
        self, followee_key: str, follower: str, author: str, backfill_limit: int, version: int = 0
    ) -> tuple[bool, list[bytes], HotState]:
        """Writes the followee-side edge; returns the author's newest posts, read in the same step,
        and (for a home key) the followee's hot state after this follow."""
        version = self.feed_store.stamp(version)
        part = self.feed_store.partition(followee_key)
        batch = self.feed_store.new_batch()
        delta, _ = set_edge(batch, keys.edge_key(part, keys.FOLLOWERS, followee_key, follower), version, True)
        state = self.followers_changed(batch, part, followee_key, delta, version)
        batch.commit()
        recent = self.feed_store.read_posts(author, backfill_limit) if backfill_limit else []
        return delta > 0, recent, state

    def remove_follower(self, followee_key: str, follower: str, version: int = 0) -> tuple[bool, HotState]:
        version = self.feed_store.stamp(version)
        part = self.feed_store.partition(followee_key)
        batch = self.feed_store.new_batch()
        delta, _ = set_edge(batch, keys.edge_key(part, keys.FOLLOWERS, followee_key, follower), version, False)
        state = self.followers_changed(batch, part, followee_key, delta, version)
        batch.commit()
        return delta < 0, state

    def add_following_many(
        self, edges: Iterable[tuple[str, str, bool, str]], version: int = 0
    ) -> tuple[Counter[str], list[tuple[str, str, str]]]:
        """Bulk follower-side edges (follower, followee, hot, followee key), one atomic batch; returns
        the edges created per followee, and the (follower, followee, kept key) of those that existed."""
        version = self.feed_store.stamp(version)
        batch = self.feed_store.new_batch()
        created: Counter[str] = Counter()
        existing: list[tuple[str, str, str]] = []
        for follower, followee, hot, followee_key in edges:
            part = self.feed_store.partition(follower)
            counters = batch.counters_of(part, follower)
            edge = keys.edge_key(part, keys.FOLLOWING, follower, followee)
            before = read_edge(batch.get(edge))
            if before is not None and before.alive:
                existing.append((follower, followee, before.extra.decode("utf-8")))
            else:
                delta, _ = set_edge(batch, edge, version, True, followee_key.encode("utf-8"))
                counters.following_count += delta
                created[followee] += delta
            if hot and is_alive(batch.get(edge)):
                set_edge(batch, keys.edge_key(part, keys.HOT_FOLLOWING, follower, followee), version, True)
        batch.commit()
        return created, existing

    def add_follower_many(self, edges: Iterable[tuple[str, str]], version: int = 0) -> dict[str, tuple[int, HotState]]:
        """Bulk followee-side edges (followee_key, follower); returns, per followee key, the edges
        created and its state after the batch (transitions evaluated once per key)."""
        version = self.feed_store.stamp(version)
        batch = self.feed_store.new_batch()
        created: Counter[str] = Counter()
        touched: dict[str, int] = {}
        for followee_key, follower in edges:
            part = touched.setdefault(followee_key, self.feed_store.partition(followee_key))
            delta, _ = set_edge(batch, keys.edge_key(part, keys.FOLLOWERS, followee_key, follower), version, True)
            created[followee_key] += delta
        result = {
            key: (created[key], self.followers_changed(batch, part, key, created[key], version))
            for key, part in touched.items()
        }
        batch.commit()
        return result

    def followers_changed(self, batch: Batch, part: int, followee_key: str, delta: int, version: int) -> HotState:
        """Counts `delta` follower edges under a key. A home key evaluates its user's hot state on
        the total; a salted key owes its user's home a report of its new count (a durable record,
        so the home hears of it exactly as it is, however often or late)."""
        counters = batch.counters_of(part, followee_key)
        counters.follower_count += delta
        user, salted = salting.home_of(followee_key)
        if not salted:
            total = counters.follower_count + self.feed_store.salted_followers(part, user)
            return self.feed_store.evaluate_hot(batch, part, user, total)
        if delta:
            # Replicas that saw the same edges report the same version.
            counters.edge_version = max(counters.edge_version + 1, version)
            owed = delivery_log.report_count(user, followee_key, counters.edge_version)
            record = keys.delivery_key(part, followee_key, 0, owed.kind)
            if not batch.put_new(record, owed.SerializeToString()):
                batch.put(record, owed.SerializeToString())
        return HotState.NORMAL  # a salted key has no state of its own

    def list_edges(
        self, family: bytes, user_key: str, after: str, limit: int, more_keys: Iterable[str] = ()
    ) -> list[str]:
        """Users with a live edge, in byte order after `after`, merged (without repeats) over `more_keys` too."""
        streams = []
        for k in [user_key, *more_keys]:
            part = self.feed_store.partition(k)
            prefix = keys.user_prefix(part, family, k)
            start = prefix + after.encode("utf-8") + b"\x00" if after else None
            stream = []
            for key, raw in self.feed_store.store.scan(prefix, start=start):
                if not is_alive(raw):
                    continue  # unfollowed: kept as a dead edge against older writes
                stream.append(keys.edge_user_of(key, len(prefix)))
                if len(stream) >= limit:
                    break
            streams.append(stream)
        return salting.merge_users(streams, limit)
