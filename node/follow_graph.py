"""Follow edges on a node: the follower side (G, beside the follower's inbox) and the followee side
(F, under the followee's home or salted key), with the counts that move with them.

Every method is one atomic batch and idempotent: an edge is keyed by its two users and counters move
only when it appears or goes. The follower-side edge keeps the followee key its other side went to,
so a follow repeated, or retried after failing midway, finds the same key again. A salted key's
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
from protos import feed_pb2

if TYPE_CHECKING:  # the feed store creates its follow graph
    from node.feed_store import FeedStore

__all__ = ["FollowGraph"]


class FollowGraph:
    def __init__(self, feed_store: FeedStore) -> None:
        self.feed_store = feed_store

    def add_following(
        self, follower: str, followee: str, hot: bool = False, followee_key: str = ""
    ) -> tuple[bool, str]:
        """Writes the follower-side edge, keeping with it the followee key its other side goes to.
        Returns (created, the key kept: `followee_key`, or the one an existing edge was made with)."""
        part = self.feed_store.partition(follower)
        batch = self.feed_store.new_batch()
        edge = keys.edge_key(part, keys.FOLLOWING, follower, followee)
        kept = batch.get(edge)
        if kept is None:
            batch.put_new(edge, followee_key.encode("utf-8"))
            batch.counters_of(part, follower).following_count += 1
        else:
            batch.counters_of(part, follower)  # the user exists from now on either way
        if hot:
            batch.put_new(keys.edge_key(part, keys.HOT_FOLLOWING, follower, followee), b"")
        batch.commit()
        return kept is None, followee_key if kept is None else kept.decode("utf-8")

    def remove_following(self, follower: str, followee: str) -> tuple[bool, str]:
        """Removes the edge and every post of `followee` from the follower's inbox. Returns (removed,
        the followee key kept with the edge)."""
        part = self.feed_store.partition(follower)
        batch = self.feed_store.new_batch()
        edge = keys.edge_key(part, keys.FOLLOWING, follower, followee)
        kept = batch.get(edge)
        removed = batch.delete_existing(edge)
        batch.delete_existing(keys.edge_key(part, keys.HOT_FOLLOWING, follower, followee))
        if removed:
            counters = batch.counters_of(part, follower)
            counters.following_count -= 1
            for key, raw in self.feed_store.store.scan(keys.user_prefix(part, keys.INBOX, follower)):
                if feed_pb2.Post.FromString(raw).author == followee and batch.delete_existing(key):
                    counters.inbox_size -= 1
        batch.commit()
        return removed, (kept or b"").decode("utf-8")

    def add_follower(
        self, followee_key: str, follower: str, author: str, backfill_limit: int
    ) -> tuple[bool, list[bytes], HotState]:
        """Writes the followee-side edge; returns the author's newest posts, read in the same step,
        and (for a home key) the followee's hot state after this follow."""
        part = self.feed_store.partition(followee_key)
        batch = self.feed_store.new_batch()
        created = batch.put_new(keys.edge_key(part, keys.FOLLOWERS, followee_key, follower), b"")
        state = self._followers_changed(batch, part, followee_key, +1 if created else 0)
        batch.commit()
        recent = self.feed_store.read_posts(author, backfill_limit) if backfill_limit else []
        return created, recent, state

    def remove_follower(self, followee_key: str, follower: str) -> tuple[bool, HotState]:
        part = self.feed_store.partition(followee_key)
        batch = self.feed_store.new_batch()
        removed = batch.delete_existing(keys.edge_key(part, keys.FOLLOWERS, followee_key, follower))
        state = self._followers_changed(batch, part, followee_key, -1 if removed else 0)
        batch.commit()
        return removed, state

    def add_following_many(
        self, edges: Iterable[tuple[str, str, bool, str]]
    ) -> tuple[Counter[str], list[tuple[str, str, str]]]:
        """Bulk follower-side edges (follower, followee, hot, followee key), one atomic batch; returns
        the edges created per followee, and the (follower, followee, kept key) of those that existed."""
        batch = self.feed_store.new_batch()
        created: Counter[str] = Counter()
        existing: list[tuple[str, str, str]] = []
        for follower, followee, hot, followee_key in edges:
            part = self.feed_store.partition(follower)
            counters = batch.counters_of(part, follower)
            edge = keys.edge_key(part, keys.FOLLOWING, follower, followee)
            kept = batch.get(edge)
            if kept is None:
                batch.put_new(edge, followee_key.encode("utf-8"))
                counters.following_count += 1
                created[followee] += 1
            else:
                existing.append((follower, followee, kept.decode("utf-8")))
            if hot:
                batch.put_new(keys.edge_key(part, keys.HOT_FOLLOWING, follower, followee), b"")
        batch.commit()
        return created, existing

    def add_follower_many(self, edges: Iterable[tuple[str, str]]) -> dict[str, tuple[int, HotState]]:
        """Bulk followee-side edges (followee_key, follower); returns, per followee key, the edges
        created and its state after the batch (transitions evaluated once per key)."""
        batch = self.feed_store.new_batch()
        created: Counter[str] = Counter()
        touched: dict[str, int] = {}
        for followee_key, follower in edges:
            part = touched.setdefault(followee_key, self.feed_store.partition(followee_key))
            if batch.put_new(keys.edge_key(part, keys.FOLLOWERS, followee_key, follower), b""):
                created[followee_key] += 1
        result = {
            key: (created[key], self._followers_changed(batch, part, key, created[key]))
            for key, part in touched.items()
        }
        batch.commit()
        return result

    def _followers_changed(self, batch: Batch, part: int, followee_key: str, delta: int) -> HotState:
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
            counters.edge_version += 1
            owed = delivery_log.report_count(user, followee_key, counters.edge_version)
            record = keys.delivery_key(part, followee_key, 0, owed.kind)
            if not batch.put_new(record, owed.SerializeToString()):
                batch.put(record, owed.SerializeToString())
        return HotState.NORMAL  # a salted key has no state of its own

    def list_edges(
        self, family: bytes, user_key: str, after: str, limit: int, more_keys: Iterable[str] = ()
    ) -> list[str]:
        """Users in byte order after `after`, merged (without repeats) over `more_keys` too."""
        streams = []
        for k in [user_key, *more_keys]:
            part = self.feed_store.partition(k)
            prefix = keys.user_prefix(part, family, k)
            start = prefix + after.encode("utf-8") + b"\x00" if after else None
            stream = []
            for key, _ in self.feed_store.store.scan(prefix, start=start):
                stream.append(keys.edge_user_of(key, len(prefix)))
                if len(stream) >= limit:
                    break
            streams.append(stream)
        return salting.merge_users(streams, limit)
