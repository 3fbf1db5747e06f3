"""The node's data model: posts by author, inboxes by consumer, follow edges and counters.

Each method is one atomic batch over the Store, and each is idempotent: posts and inbox entries are
keyed by post id, edges by the pair of users, and counters only move when a key appears or goes.
That is what lets routers retry, fan-outs overlap, and (later) partitions stream while written.

Two rules keep concurrent operations from resurrecting data:
- an inbox accepts a post only while its consumer follows the post's author (the ``following``
  edge lives in the consumer's partition, beside the inbox), so a fan-out that lands after an
  unfollow is dropped;
- removing a post from an inbox leaves a tombstone, so a fan-out that lands after the delete is
  dropped too.

Posts are stored as ``feed_pb2.Post`` bytes: the storage record and the wire message are one format.
"""

from __future__ import annotations

import heapq
import struct
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from common import salting
from common.hot_state import HotPolicy, HotState, HotUser
from common.partitioning import partition_of
from node import delivery_log, keys
from node.store import Store
from protos import feed_pb2

__all__ = ["FeedStore", "UserCounters", "Batch"]

_COUNTERS = struct.Struct(">QQQQQ")
_COUNTERS_V1 = struct.Struct(">QQQQ")  # written before edge versions existed
_SALT_COUNT = struct.Struct(">QQ")  # a salted key's reported follower count, and its version


@dataclass
class UserCounters:
    follower_count: int = 0  # follower edges under this key (a salted user: its home key's only)
    following_count: int = 0
    post_count: int = 0
    inbox_size: int = 0
    edge_version: int = 0  # grows with every follower edge change: orders a salted key's reports

    def encode(self) -> bytes:
        return _COUNTERS.pack(
            max(self.follower_count, 0),
            max(self.following_count, 0),
            max(self.post_count, 0),
            max(self.inbox_size, 0),
            self.edge_version,
        )

    @classmethod
    def decode(cls, raw: bytes) -> UserCounters:
        layout = _COUNTERS if len(raw) == _COUNTERS.size else _COUNTERS_V1
        return cls(*layout.unpack(raw))


class Batch:
    """Puts and deletes gathered for one atomic write, readable before they are written."""

    def __init__(self, store: Store, family_counts: Counter[bytes]) -> None:
        self.store = store
        self.family_counts = family_counts
        self.puts: dict[bytes, bytes] = {}
        self.deletes: set[bytes] = set()
        self.counters: dict[bytes, UserCounters] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self.puts:
            return self.puts[key]
        if key in self.deletes:
            return None
        return self.store.get(key)

    def put_new(self, key: bytes, value: bytes) -> bool:
        """Puts a key that must not exist yet; False (and nothing written) if it does."""
        if self.get(key) is not None:
            return False
        self.put(key, value)
        self.family_counts[keys.family_of(key)] += 1
        return True

    def put(self, key: bytes, value: bytes) -> None:
        self.deletes.discard(key)
        self.puts[key] = value

    def delete_existing(self, key: bytes) -> bool:
        if self.get(key) is None:
            return False
        self.puts.pop(key, None)
        self.deletes.add(key)
        self.family_counts[keys.family_of(key)] -= 1
        return True

    def counters_of(self, partition: int, user_key: str) -> UserCounters:
        key = keys.meta_key(partition, user_key)
        if key not in self.counters:
            raw = self.get(key)
            if raw is None:
                self.family_counts[keys.META] += 1
            self.counters[key] = UserCounters.decode(raw) if raw is not None else UserCounters()
        return self.counters[key]

    def commit(self) -> None:
        for key, counters in self.counters.items():
            self.puts[key] = counters.encode()
        if self.puts or self.deletes:
            self.store.write(self.puts.items(), self.deletes)


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
        # Keys per family on this node, for status; counted once at start, then kept current.
        self.family_counts: Counter[bytes] = Counter()

    def partition(self, key: str) -> int:
        return partition_of(key, self.partitions)

    def count_keys(self) -> None:
        counts: Counter[bytes] = Counter()
        for key, _ in self.store.scan(b""):
            if not key.startswith(b"\xff\xff"):
                counts[keys.family_of(key)] += 1
        self.family_counts = counts

    def new_batch(self) -> Batch:
        """An atomic write, readable before it is committed; it keeps the family counts current."""
        return Batch(self.store, self.family_counts)

    # -- posts, by author ------------------------------------------------------------------------

    def store_post(self, author_key: str, post: feed_pb2.Post) -> tuple[bool, HotState]:
        """Stores the post and, in the same atomic write, the record of the delivery it owes (none
        for a HOT author: followers merge its posts at read time). Returns (created, the key's hot
        state). A retried store finds the post and writes nothing: the first write had both."""
        part = self.partition(author_key)
        batch = self.new_batch()
        state, _ = self._registry(batch, part, author_key)
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
        """Removes the post and, in the same write, records its removal from every follower's inbox
        (replacing an insert still owed). Also for a post stored while its author was hot: a
        cool-down may have copied it into inboxes since."""
        part = self.partition(author_key)
        key = keys.post_key(part, keys.POSTS, author_key, post_id)
        raw = self.store.get(key)
        if raw is None:
            return None
        batch = self.new_batch()
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
            [
                (keys.post_id_of_raw(raw), raw)
                for raw in self._newest(self.partition(k), keys.POSTS, k, limit, before_id)
            ]
            for k in all_keys
        ]
        merged = heapq.merge(*streams, key=lambda item: -item[0])
        return [raw for _, raw in list(merged)[:limit]]

    # -- inboxes, by consumer --------------------------------------------------------------------

    def insert_inbox(self, posts: Iterable[feed_pb2.Post], consumers: Iterable[str]) -> int:
        """Inserts every post into every consumer's inbox that follows its author; trims each to the cap."""
        posts = list(posts)
        encoded = [p.SerializeToString() for p in posts]
        batch = self.new_batch()
        inserted = 0
        touched: list[tuple[int, str]] = []
        for consumer in consumers:
            part = self.partition(consumer)
            counters = None
            for post, raw in zip(posts, encoded, strict=True):
                if batch.get(keys.edge_key(part, keys.FOLLOWING, consumer, post.author)) is None:
                    continue  # not (or no longer) a follower: never resurrect after an unfollow
                if batch.get(keys.post_key(part, keys.DELETED, consumer, post.id)) is not None:
                    continue  # deleted while this fan-out was in flight
                if batch.put_new(keys.post_key(part, keys.INBOX, consumer, post.id), raw):
                    counters = counters or batch.counters_of(part, consumer)
                    counters.inbox_size += 1
                    inserted += 1
            if counters is not None and counters.inbox_size > self.timeline_cap:
                touched.append((part, consumer))
        for part, consumer in touched:
            self._trim_inbox(batch, part, consumer)
        batch.commit()
        return inserted

    def _trim_inbox(self, batch: Batch, part: int, consumer: str) -> None:
        counters = batch.counters_of(part, consumer)
        excess = counters.inbox_size - self.timeline_cap
        # Oldest first; entries queued in this batch are merged by looking at the batch's view.
        prefix = keys.user_prefix(part, keys.INBOX, consumer)
        candidates = sorted(
            {k for k, _ in self._first_keys(prefix, excess + len(batch.deletes))}
            | {k for k in batch.puts if k.startswith(prefix)}
        )
        for key in candidates:
            if excess <= 0:
                break
            if batch.delete_existing(key):
                counters.inbox_size -= 1
                excess -= 1

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

    # -- follow edges ----------------------------------------------------------------------------

    def add_following(
        self, follower: str, followee: str, hot: bool = False, followee_key: str = ""
    ) -> tuple[bool, str]:
        """Writes the follower-side edge, keeping with it the followee key its other side goes to.
        Returns (created, the key kept: `followee_key`, or the one an existing edge was made with)."""
        part = self.partition(follower)
        batch = self.new_batch()
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
        part = self.partition(follower)
        batch = self.new_batch()
        edge = keys.edge_key(part, keys.FOLLOWING, follower, followee)
        kept = batch.get(edge)
        removed = batch.delete_existing(edge)
        batch.delete_existing(keys.edge_key(part, keys.HOT_FOLLOWING, follower, followee))
        if removed:
            counters = batch.counters_of(part, follower)
            counters.following_count -= 1
            for key, raw in self.store.scan(keys.user_prefix(part, keys.INBOX, follower)):
                if feed_pb2.Post.FromString(raw).author == followee and batch.delete_existing(key):
                    counters.inbox_size -= 1
        batch.commit()
        return removed, (kept or b"").decode("utf-8")

    def add_follower(
        self, followee_key: str, follower: str, author: str, backfill_limit: int
    ) -> tuple[bool, list[bytes], HotState]:
        """Writes the followee-side edge; returns the author's newest posts, read in the same step,
        and (for a home key) the followee's hot state after this follow."""
        part = self.partition(followee_key)
        batch = self.new_batch()
        created = batch.put_new(keys.edge_key(part, keys.FOLLOWERS, followee_key, follower), b"")
        state = self._followers_changed(batch, part, followee_key, +1 if created else 0)
        batch.commit()
        recent = self.read_posts(author, backfill_limit) if backfill_limit else []
        return created, recent, state

    def remove_follower(self, followee_key: str, follower: str) -> tuple[bool, HotState]:
        part = self.partition(followee_key)
        batch = self.new_batch()
        removed = batch.delete_existing(keys.edge_key(part, keys.FOLLOWERS, followee_key, follower))
        state = self._followers_changed(batch, part, followee_key, -1 if removed else 0)
        batch.commit()
        return removed, state

    def add_following_many(
        self, edges: Iterable[tuple[str, str, bool, str]]
    ) -> tuple[Counter[str], list[tuple[str, str, str]]]:
        """Bulk follower-side edges (follower, followee, hot, followee key), one atomic batch; returns
        the edges created per followee, and the (follower, followee, kept key) of those that existed."""
        batch = self.new_batch()
        created: Counter[str] = Counter()
        existing: list[tuple[str, str, str]] = []
        for follower, followee, hot, followee_key in edges:
            part = self.partition(follower)
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
        batch = self.new_batch()
        created: Counter[str] = Counter()
        touched: dict[str, int] = {}
        for followee_key, follower in edges:
            part = touched.setdefault(followee_key, self.partition(followee_key))
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
            total = counters.follower_count + self._salted_followers(part, user, batch)
            return self._evaluate_hot(batch, part, user, total)
        if delta:
            counters.edge_version += 1
            owed = delivery_log.report_count(user, followee_key, counters.edge_version)
            record = keys.delivery_key(part, followee_key, 0, owed.kind)
            if not batch.put_new(record, owed.SerializeToString()):
                batch.put(record, owed.SerializeToString())
        return HotState.NORMAL  # a salted key has no state of its own

    def report_follower_count(self, user: str, salted_key: str, count: int, version: int) -> HotState:
        """A salted key's follower count, as its node reports it; the newest version wins."""
        part = self.partition(user)
        batch = self.new_batch()
        entry = keys.edge_key(part, keys.SALT_COUNTS, user, salted_key)
        raw = batch.get(entry)
        if raw is None or _SALT_COUNT.unpack(raw)[1] < version:
            value = _SALT_COUNT.pack(count, version)
            if not batch.put_new(entry, value):
                batch.put(entry, value)
        home = batch.counters_of(part, user).follower_count
        state = self._evaluate_hot(batch, part, user, home + self._salted_followers(part, user, batch))
        batch.commit()
        return state

    def _salted_followers(self, part: int, user: str, batch: Batch | None = None) -> int:
        """The follower edges under a user's salted keys, as last reported to its home."""
        prefix = keys.user_prefix(part, keys.SALT_COUNTS, user)
        reports = dict(self.store.scan(prefix))
        if batch is not None:  # reports written by this batch count already
            reports.update((k, v) for k, v in batch.puts.items() if k.startswith(prefix))
        return sum(_SALT_COUNT.unpack(raw)[0] for raw in reports.values())

    def follower_count(self, user: str) -> int:
        """A user's followers: its home key's edges plus its salted keys' reported counts."""
        part = self.partition(user)
        counters = self.user_counters(user)
        return (counters.follower_count if counters else 0) + self._salted_followers(part, user)

    def list_edges(
        self, family: bytes, user_key: str, after: str, limit: int, more_keys: Iterable[str] = ()
    ) -> list[str]:
        """Users in byte order after `after`, merged (without repeats) over `more_keys` too."""
        streams = []
        for k in [user_key, *more_keys]:
            part = self.partition(k)
            prefix = keys.user_prefix(part, family, k)
            start = prefix + after.encode("utf-8") + b"\x00" if after else None
            stream = []
            for key, _ in self.store.scan(prefix, start=start):
                stream.append(keys.edge_user_of(key, len(prefix)))
                if len(stream) >= limit:
                    break
            streams.append(stream)
        out: list[str] = []
        for user in heapq.merge(*streams):
            if not out or out[-1] != user:
                out.append(user)
                if len(out) >= limit:
                    break
        return out

    def _edges(self, part: int, family: bytes, user_key: str) -> list[str]:
        prefix = keys.user_prefix(part, family, user_key)
        return [keys.edge_user_of(key, len(prefix)) for key, _ in self.store.scan(prefix)]

    # -- counters --------------------------------------------------------------------------------

    def user_counters(self, user_key: str) -> UserCounters | None:
        raw = self.store.get(keys.meta_key(self.partition(user_key), user_key))
        return UserCounters.decode(raw) if raw is not None else None

    # -- hot users -------------------------------------------------------------------------------

    def _registry(self, batch: Batch, part: int, user: str) -> tuple[HotState, bool]:
        raw = batch.get(keys.registry_key(part, user))
        if raw is None:
            return HotState.NORMAL, False
        return HotState(raw[0]), bool(raw[1])

    def _set_registry(self, batch: Batch, part: int, user: str, state: HotState, pinned: bool) -> None:
        key = keys.registry_key(part, user)
        value = bytes([int(state), int(pinned)])
        if not batch.put_new(key, value):
            batch.put(key, value)

    def _evaluate_hot(self, batch: Batch, part: int, user: str, follower_count: int) -> HotState:
        """Starts a transition when the follower count crosses a mark (common/hot_state.py's policy)."""
        state, pinned = self._registry(batch, part, user)
        after = self.hot_policy.next_state(state, pinned, follower_count)
        if after is not state:
            self._set_registry(batch, part, user, after, pinned)
        return after

    def hot_state(self, user: str) -> HotState:
        return self._registry(self.new_batch(), self.partition(user), user)[0]

    def set_hot_state(
        self, user: str, state: HotState, expect: Iterable[HotState] = (), pin: bool = False
    ) -> tuple[HotState, bool]:
        """Compare-and-set: with `expect`, only from one of those states. Returns (state, changed)."""
        part = self.partition(user)
        batch = self.new_batch()
        current, pinned = self._registry(batch, part, user)
        expected = set(expect)
        if expected and current not in expected:
            return current, False
        self._set_registry(batch, part, user, state, pinned or pin)
        batch.counters_of(part, user)
        batch.commit()
        return state, current != state

    def list_hot_users(self, partitions: Iterable[int]) -> list[HotUser]:
        entries = []
        for part in sorted(partitions):
            prefix = keys.registry_prefix(part)
            for key, raw in self.store.scan(prefix):
                user = key[len(prefix) :].decode("utf-8")
                entries.append(HotUser(user, HotState(raw[0]), bool(raw[1]), self.follower_count(user)))
        return entries

    def set_hot_following(
        self, followee: str, consumers: Iterable[str], hot: bool, posts: Iterable[feed_pb2.Post] = ()
    ) -> int:
        """Marks `followee` merged-at-read for each consumer who follows it, or (hot=False) copies
        `posts` into their inboxes and then unmarks it, so no post disappears in between."""
        consumers = list(consumers)
        if not hot:
            self.insert_inbox(posts, consumers)
        batch = self.new_batch()
        changed = 0
        for consumer in consumers:
            part = self.partition(consumer)
            key = keys.edge_key(part, keys.HOT_FOLLOWING, consumer, followee)
            if hot:
                if batch.get(keys.edge_key(part, keys.FOLLOWING, consumer, followee)) is not None:
                    changed += batch.put_new(key, b"")
            else:
                changed += batch.delete_existing(key)
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
