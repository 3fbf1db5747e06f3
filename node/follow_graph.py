"""Follow edges on a node: the follower side (G, beside the follower's inbox), the followee side
(F, under the followee's home or salted key) and the merged-at-read marks (K, beside the follower's
inbox: hot followees whose posts a timeline read merges in), with the counts that move with them.

Every method is one atomic batch and idempotent: an edge is keyed by its two users and counters move
only when it appears or goes. Edges carry versions (node/versioned.py): replicas applying the same
follows and unfollows in any order end with the same edges. The follower-side edge keeps the
followee key its other side went to, so a follow repeated, or retried after failing midway, finds
the same key again. A salted key's
edge changes owe its user's home a count report (a durable record, node/delivery_log.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from common import salting
from common.hot_state import HotState
from common.versions import VersionClock
from node import delivery_log, keys
from node.batch import Batch, Batches
from node.hot_registry import HotRegistry
from node.inboxes import Inboxes
from node.posts import Posts
from node.readers import Readers
from node.relations import Relations
from node.versioned import is_alive, read_edge, set_edge
from protos import feed_pb2, storage_pb2

__all__ = ["FollowGraph"]


class FollowGraph:
    def __init__(
        self,
        batches: Batches,
        partition: Callable[[str], int],
        clock: VersionClock,
        registry: HotRegistry,
        inboxes: Inboxes,
        posts: Posts,
        relations: Relations,
        readers: Readers,
    ) -> None:
        self.batches = batches
        self.store = batches.store
        self.partition = partition
        self.clock = clock
        self.registry = registry
        self.inboxes = inboxes
        self.posts = posts
        self.relations = relations
        self.readers = readers

    def add_following(
        self, follower: str, followee: str, hot: bool = False, followee_key: str = "", version: int = 0
    ) -> tuple[bool, str, storage_pb2.Relation]:
        """Writes the follower-side edge, keeping with it the followee key its other side goes to.
        Returns (created, the key kept: `followee_key`, or the one an existing edge was made with,
        and the block refusing it: 0, or BLOCKS / BLOCKED_BY as seen from the follower)."""
        version = self.clock.stamp(version)
        part = self.partition(follower)
        batch = self.batches.new()
        refused = self.relations.refusal(batch, part, follower, followee)
        if refused:
            return False, followee_key, refused
        edge = keys.edge_key(part, keys.FOLLOWING, follower, followee)
        before = read_edge(batch.get(edge))
        counters = batch.counters_of(part, follower)  # the user exists from now on either way
        self.readers.followed(batch, part, follower, version >> 16)
        if before is not None and before.alive:
            set_edge(batch, edge, version, True)  # newer than an unfollow that may still arrive
            kept: str | None = before.extra.decode("utf-8")
        else:
            delta, _ = set_edge(batch, edge, version, True, followee_key.encode("utf-8"))
            counters.following_count += delta
            kept = None
        following = is_alive(batch.get(edge))
        if following:
            self.inboxes.followed(batch, part, follower, followee)
        if hot and following:
            set_edge(batch, keys.edge_key(part, keys.HOT_FOLLOWING, follower, followee), version, True)
        batch.commit()
        return kept is None and following, followee_key if kept is None else kept, storage_pb2.RELATION_UNSPECIFIED

    def remove_following(self, follower: str, followee: str, version: int = 0) -> tuple[bool, str]:
        """Removes the edge (leaving a dead one with its version) and every post of `followee` from
        the follower's inbox. Returns (removed, the followee key kept with the edge)."""
        version = self.clock.stamp(version)
        part = self.partition(follower)
        batch = self.batches.new()
        delta, before = set_edge(batch, keys.edge_key(part, keys.FOLLOWING, follower, followee), version, False)
        if before is None or before.version < version:
            self.unfollowed(batch, part, follower, followee, version, was_following=delta < 0)
        batch.commit()
        return delta < 0, (before.extra if before is not None else b"").decode("utf-8")

    def unfollowed(
        self, batch: Batch, part: int, follower: str, followee: str, version: int, was_following: bool
    ) -> None:
        """What an edge going dead takes with it: the count, the merged-at-read mark, the inbox copies.
        Also where this replica never saw the follow: its inbox may have taken the author's posts
        meanwhile (node/inboxes.py)."""
        if was_following:
            batch.counters_of(part, follower).following_count -= 1
        hot_mark = keys.edge_key(part, keys.HOT_FOLLOWING, follower, followee)
        if batch.get(hot_mark) is not None:
            set_edge(batch, hot_mark, version, False)
        self.inboxes.unfollowed(batch, part, follower, followee)

    def add_follower(
        self, followee_key: str, follower: str, author: str, backfill_limit: int, version: int = 0
    ) -> tuple[bool, list[bytes], HotState, storage_pb2.Relation]:
        """Writes the followee-side edge; returns the author's newest posts, read in the same step,
        (for a home key) the followee's hot state after this follow, and the block refusing it
        (0, or BLOCKS / BLOCKED_BY as seen from the follower; checked on a home key only: a salted
        key's partition does not hold its user's blocks)."""
        version = self.clock.stamp(version)
        part = self.partition(followee_key)
        batch = self.batches.new()
        if not salting.home_of(followee_key)[1]:
            refused = self.relations.refusal(batch, part, followee_key, follower)
            if refused:
                # The followee blocked the follower (BLOCKS here) is BLOCKED_BY seen from the follower.
                seen = storage_pb2.BLOCKED_BY if refused == storage_pb2.BLOCKS else storage_pb2.BLOCKS
                return False, [], self.registry.state_in(batch, part, followee_key)[0], seen
        delta, _ = set_edge(batch, keys.edge_key(part, keys.FOLLOWERS, followee_key, follower), version, True)
        state = self.followers_changed(batch, part, followee_key, delta, version)
        batch.commit()
        recent = self.posts.read_posts(author, backfill_limit) if backfill_limit else []
        return delta > 0, recent, state, storage_pb2.RELATION_UNSPECIFIED

    def remove_follower(self, followee_key: str, follower: str, version: int = 0) -> tuple[bool, HotState]:
        version = self.clock.stamp(version)
        part = self.partition(followee_key)
        batch = self.batches.new()
        delta, _ = set_edge(batch, keys.edge_key(part, keys.FOLLOWERS, followee_key, follower), version, False)
        state = self.followers_changed(batch, part, followee_key, delta, version)
        batch.commit()
        return delta < 0, state

    def add_following_many(
        self, edges: Iterable[tuple[str, str, bool, str]], version: int = 0
    ) -> tuple[Counter[str], list[tuple[str, str, str]]]:
        """Bulk follower-side edges (follower, followee, hot, followee key), one atomic batch; returns
        the edges created per followee, and the (follower, followee, kept key) of those that existed."""
        version = self.clock.stamp(version)
        batch = self.batches.new()
        created: Counter[str] = Counter()
        existing: list[tuple[str, str, str]] = []
        followers: dict[str, int] = {}
        for follower, followee, hot, followee_key in edges:
            part = followers.setdefault(follower, self.partition(follower))
            counters = batch.counters_of(part, follower)
            edge = keys.edge_key(part, keys.FOLLOWING, follower, followee)
            before = read_edge(batch.get(edge))
            if before is not None and before.alive:
                existing.append((follower, followee, before.extra.decode("utf-8")))
            else:
                delta, _ = set_edge(batch, edge, version, True, followee_key.encode("utf-8"))
                counters.following_count += delta
                created[followee] += delta
                if delta > 0:
                    self.inboxes.followed(batch, part, follower, followee)
            if hot and is_alive(batch.get(edge)):
                set_edge(batch, keys.edge_key(part, keys.HOT_FOLLOWING, follower, followee), version, True)
        for follower, part in followers.items():  # once per follower, not per edge
            self.readers.followed(batch, part, follower, version >> 16)
        batch.commit()
        return created, existing

    def add_follower_many(self, edges: Iterable[tuple[str, str]], version: int = 0) -> dict[str, tuple[int, HotState]]:
        """Bulk followee-side edges (followee_key, follower); returns, per followee key, the edges
        created and its state after the batch (transitions evaluated once per key)."""
        version = self.clock.stamp(version)
        batch = self.batches.new()
        created: Counter[str] = Counter()
        touched: dict[str, int] = {}
        for followee_key, follower in edges:
            part = touched.setdefault(followee_key, self.partition(followee_key))
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
            total = counters.follower_count + self.registry.salted_followers(part, user)
            return self.registry.evaluate(batch, part, user, total)
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
            part = self.partition(k)
            prefix = keys.user_prefix(part, family, k)
            start = prefix + after.encode("utf-8") + b"\x00" if after else None
            stream = []
            for key, raw in self.store.scan(prefix, start=start):
                if not is_alive(raw):
                    continue  # unfollowed: kept as a dead edge against older writes
                stream.append(keys.edge_user_of(key, len(prefix)))
                if len(stream) >= limit:
                    break
            streams.append(stream)
        # One key (the common case: a user never hot): its stream is in order, without repeats, at
        # most `limit` long already; the merge cost more per listed follower than its inbox write.
        return streams[0] if len(streams) == 1 else salting.merge_users(streams, limit)

    def merged_at_read(self, consumer: str) -> list[str]:
        """The hot followees whose posts a read of the consumer's timeline merges in (live K edges)."""
        prefix = keys.user_prefix(self.partition(consumer), keys.HOT_FOLLOWING, consumer)
        return [keys.edge_user_of(key, len(prefix)) for key, raw in self.store.scan(prefix) if is_alive(raw)]

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
        version = self.clock.stamp(version)
        consumers = list(consumers)
        if not hot:
            self.inboxes.insert(posts, consumers)
        batch = self.batches.new()
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

    # -- repair merge rule (node/repair.py) ------------------------------------------------------

    def merge_edge(self, key: bytes, value: bytes) -> int:
        """Another replica's edge (F, G or K): the newer version wins, and what an edge appearing or
        going takes with it here (counts, the inbox copies of an unfollowed author) moves with it."""
        theirs = read_edge(value)
        assert theirs is not None
        family, part = keys.family_of(key), keys.partition_of_key(key)
        user, other = keys.user_of(key).decode("utf-8"), keys.other_user_of(key)
        batch = self.batches.new()
        if family == keys.HOT_FOLLOWING and theirs.alive:
            # Merged-at-read only while the follow edge lives: beside a dead one, it is dead as of then.
            follow = read_edge(batch.get(keys.edge_key(part, keys.FOLLOWING, user, other)))
            if follow is None or not follow.alive:
                if follow is None or follow.version <= theirs.version:
                    return 0
                set_edge(batch, key, follow.version, False)
                batch.commit()
                return 1
        before = read_edge(batch.get(key))
        if before is not None and before.version >= theirs.version:
            return 0
        delta, _ = set_edge(batch, key, theirs.version, theirs.alive, theirs.extra)
        if family == keys.FOLLOWING:
            if delta > 0:
                batch.counters_of(part, user).following_count += 1
                self.inboxes.followed(batch, part, user, other)
            elif not theirs.alive:
                self.unfollowed(batch, part, user, other, theirs.version, was_following=delta < 0)
        elif family == keys.FOLLOWERS and delta:
            self.followers_changed(batch, part, user, delta, theirs.version)
        batch.commit()
        return 1
