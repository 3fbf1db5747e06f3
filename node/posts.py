"""Posts on a node, by author key (family P), their tombstones (Y), and the delivery each one owes.

A post is stored as ``feed_pb2.Post`` bytes (the storage record and the wire message are one format)
together with, in the same atomic batch, the record of the delivery it owes its author's followers
(node/delivery_log.py), so the record is on disk before the post is acknowledged. A delete leaves a
tombstone, so a copy of the post arriving later (a hint, a repair) cannot bring it back, and records
the post's removal from every follower's inbox in the same write. Every write is idempotent.
"""

from __future__ import annotations

import heapq
import itertools
import struct
from collections.abc import Callable, Generator, Iterable

from common import post_bytes, salting
from common.hot_state import HotState
from feed.post_ids import created_at_ms
from node import delivery_log, keys
from node.batch import Batch, Batches
from node.hot_registry import HotRegistry
from node.inboxes import TimelineListener, nobody_listens
from node.tombstones import tombstone_value, tombstone_version
from protos import feed_pb2

__all__ = ["Posts"]

_POST_ID = struct.Struct(">Q")


class Posts:
    def __init__(
        self,
        batches: Batches,
        partition: Callable[[str], int],
        registry: HotRegistry,
        finished_early: delivery_log.FinishedEarly,
    ) -> None:
        self.batches = batches
        self.store = batches.store
        self.partition = partition
        self.registry = registry
        # Deliveries finished before their record reached this replica: not written again.
        self.finished_early = finished_early
        self.changed: TimelineListener = nobody_listens  # an author's own posts are in its timeline

    def store_post(
        self, author_key: str, post: feed_pb2.Post, request_id: str = "", replica: bool = False
    ) -> tuple[bool, HotState, int]:
        """Stores the post and, in the same atomic write, the record of the delivery it owes (none
        for a HOT author: followers merge its posts at read time). Returns (created, the key's hot
        state, the id the client's `request_id` was stored as before, if it was: nothing is stored
        then). A retried store finds the post and writes nothing: the first write had both.

        Two attempts of one request can reach different replicas as different posts (a coordinator
        died after storing its own copy; the retry's coordinator never saw it). The coordinator of a
        retry answers with the post it holds (`replica` False); a replica given a copy (`replica`
        True) keeps the later attempt, the larger id, and removes the other as a delete would, so
        every replica ends with the post the client was last told about."""
        part = self.partition(author_key)
        batch = self.batches.new()
        state, _ = self.registry.state_in(batch, part, author_key)
        if request_id:
            request = keys.request_key(part, author_key, request_id)
            earlier = batch.get(request)
            earlier_id = int(_POST_ID.unpack(earlier)[0]) if earlier is not None else 0
            if earlier_id and earlier_id != post.id:
                if not replica or earlier_id > post.id:
                    return False, state, earlier_id
                # Superseded by this later attempt: dated by it, so every replica writes the same.
                self._remove_in(batch, part, author_key, earlier_id, created_at_ms(post.id) << 16)
                batch.put(request, _POST_ID.pack(post.id))
            elif not earlier_id:
                batch.put_new(request, _POST_ID.pack(post.id))
        if batch.get(keys.post_key(part, keys.POST_TOMBSTONES, author_key, post.id)) is not None:
            return False, state, 0  # deleted already (the delete reached this replica first)
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
                self._owe(batch, part, author_key, post.id, owed)
        batch.commit()
        if created:
            self.changed([salting.home_of(author_key)[0]])
        return created, state, 0

    def remove_post(self, author_key: str, post_id: int, version: int) -> feed_pb2.Post | None:
        """Removes the post, leaving a tombstone dated `version` (the delete's coordinator stamped
        it), and in the same write records its removal from every follower's inbox (replacing an
        insert still owed). Also for a post stored while its author was hot: a cool-down may have
        copied it into inboxes since. None if the post was not here."""
        part = self.partition(author_key)
        batch = self.batches.new()
        raw = self._remove_in(batch, part, author_key, post_id, version)
        batch.commit()
        if raw is None:
            return None
        self.changed([salting.home_of(author_key)[0]])
        post: feed_pb2.Post = feed_pb2.Post.FromString(raw)
        return post

    def _remove_in(self, batch: Batch, part: int, author_key: str, post_id: int, version: int) -> bytes | None:
        """In `batch`: the post's tombstone (of the two versions of one deleted twice, the later
        stays: replicas agree), and if the post is here its removal and the retraction it owes
        (replacing an insert still owed). Returns the post as stored, or None."""
        key = keys.post_key(part, keys.POSTS, author_key, post_id)
        tombstone = keys.post_key(part, keys.POST_TOMBSTONES, author_key, post_id)
        held = batch.get(tombstone)
        if held is None:
            batch.put_new(tombstone, tombstone_value(version))
        elif tombstone_version(tombstone, held) < version:
            batch.put(tombstone, tombstone_value(version))
        raw = batch.get(key)
        if raw is None:
            return None
        state, _ = self.registry.state_in(batch, part, author_key)
        batch.delete_existing(key)
        batch.counters_of(part, author_key).post_count -= 1
        author, salted_key = salting.home_of(author_key)
        owed = delivery_log.retract(post_id, author, salted=salted_key or state.salted)
        batch.delete_existing(keys.delivery_key(part, author_key, post_id, delivery_log.INSERT))
        self._owe(batch, part, author_key, post_id, owed)
        return raw

    def _owe(self, batch: Batch, part: int, author_key: str, post_id: int, owed: delivery_log.Delivery) -> None:
        """In `batch`: the delivery record `owed`, unless its driver already finished it (the note
        reached this replica before the write did: node/delivery_log.py, FinishedEarly)."""
        record = keys.delivery_key(part, author_key, post_id, owed.kind)
        if not self.finished_early.take(record):
            batch.put_new(record, owed.SerializeToString())

    def get(self, author_key: str, post_id: int) -> bytes | None:
        """One post as stored, or None."""
        return self.store.get(keys.post_key(self.partition(author_key), keys.POSTS, author_key, post_id))

    def read_posts(self, author_key: str, limit: int, before_id: int = 0, more_keys: Iterable[str] = ()) -> list[bytes]:
        """Newest first, merged over the author's salted keys when `more_keys` names them."""
        all_keys = [author_key, *more_keys]
        if len(all_keys) == 1:
            return self._newest(author_key, limit, before_id)
        # Lazily, key by key: a rebuild reads a thousand authors' keys for the newest `limit` of all.
        streams = [self._scan_newest(k, before_id) for k in all_keys]
        try:
            merged = heapq.merge(*streams, key=post_bytes.post_id, reverse=True)
            return list(itertools.islice(merged, limit))
        finally:
            for stream in streams:
                stream.close()

    def newest_keyed(self, author_key: str, limit: int, before_id: int = 0) -> list[tuple[bytes, bytes]]:
        """The author's newest `limit` posts below `before_id` under this one key, each with its
        post id as its key encodes it (node/inboxes.py's read_keyed pairs them the same way)."""
        part = self.partition(author_key)
        start = keys.post_key(part, keys.POSTS, author_key, before_id - 1) if before_id else None
        out = []
        for key, raw in self.store.scan(keys.user_prefix(part, keys.POSTS, author_key), start=start, reverse=True):
            out.append((key[-8:], raw))
            if len(out) >= limit:
                break
        return out

    def _scan_newest(self, author_key: str, before_id: int) -> Generator[bytes, None, None]:
        part = self.partition(author_key)
        start = keys.post_key(part, keys.POSTS, author_key, before_id - 1) if before_id else None
        for _, raw in self.store.scan(keys.user_prefix(part, keys.POSTS, author_key), start=start, reverse=True):
            yield raw

    def _newest(self, author_key: str, limit: int, before_id: int) -> list[bytes]:
        return [raw for _, raw in self.newest_keyed(author_key, limit, before_id)]

    def deleted_since(self, author_key: str, oldest_id: int) -> list[int]:
        """The ids of the author's deleted posts (tombstones held) from `oldest_id` on."""
        part = self.partition(author_key)
        start = keys.post_key(part, keys.POST_TOMBSTONES, author_key, oldest_id)
        prefix = keys.user_prefix(part, keys.POST_TOMBSTONES, author_key)
        return [keys.post_id_of(key) for key in self.store.scan_keys(prefix, start=start)]

    # -- repair merge rules (node/repair.py) -----------------------------------------------------

    def merge_post(self, key: bytes, value: bytes) -> int:
        """Another replica's post: taken unless this replica has it or its tombstone."""
        if self.store.get(key) is not None:
            return 0
        part, user = keys.partition_of_key(key), keys.user_of(key).decode("utf-8")
        if self.store.get(keys.post_key(part, keys.POST_TOMBSTONES, user, keys.post_id_of(key))) is not None:
            return 0
        batch = self.batches.new()
        batch.put_new(key, value)
        batch.counters_of(part, user).post_count += 1
        batch.commit()
        return 1

    def merge_tombstone(self, key: bytes, value: bytes) -> int:
        """Another replica's tombstone: the post goes here too (with its retraction owed)."""
        version = tombstone_version(key, value)
        held = self.store.get(key)
        if held is not None and tombstone_version(key, held) >= version:
            return 0
        self.remove_post(keys.user_of(key).decode("utf-8"), keys.post_id_of(key), version)
        return 1
