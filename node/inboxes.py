"""Home-timeline inboxes on a node, by consumer (family I), and their tombstones (X).

An inbox holds copies of the posts fanned out to its consumer, keyed by post id (newest last in
byte order, so a reverse scan reads newest first), trimmed to `timeline_cap` entries. Two rules keep
concurrent operations from resurrecting data:
- an inbox refuses a post of an author its consumer has unfollowed (the dead ``following`` edge
  lives in the consumer's partition, beside the inbox), so a fan-out that lands after an unfollow
  is dropped. A replica that has not seen the follow yet (its edge still on its way, as a forward
  or a hint, behind the quorum that acknowledged it) takes the post: deliveries only go to
  followers, and an unfollow arriving later purges the inbox anyway. Refusing it there left that
  replica without the entry until repair, and a reader of that replica without the post;
- removing a post from an inbox leaves a tombstone, so a fan-out that lands after the delete is
  dropped too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from node import keys
from node.batch import Batch, Batches
from node.store import newest_values
from node.versioned import is_alive
from protos import feed_pb2

__all__ = ["Inboxes"]


class Inboxes:
    def __init__(self, batches: Batches, partition: Callable[[str], int], timeline_cap: int) -> None:
        self.batches = batches
        self.store = batches.store
        self.partition = partition
        self.timeline_cap = timeline_cap

    def insert(self, posts: Iterable[feed_pb2.Post], consumers: Iterable[str]) -> int:
        """Inserts every post into every consumer's inbox that has not unfollowed its author; trims
        each to the cap. The edge and tombstone are read from the store directly: this batch writes
        neither."""
        entries = [(post.author, post.id, post.SerializeToString()) for post in posts]
        batch = self.batches.new()
        get = self.store.get
        inserted = 0
        over_cap: list[tuple[int, str, list[bytes]]] = []
        for consumer in consumers:
            part = self.partition(consumer)
            counters = None
            added = []
            for author, post_id, raw in entries:
                edge, tombstone, inbox = keys.inbox_entry_keys(part, consumer, author, post_id)
                following = get(edge)
                if following is not None and not is_alive(following):
                    continue  # unfollowed: never resurrect after an unfollow
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
            self._trim(batch, part, consumer, added)
        batch.commit()
        return inserted

    def _trim(self, batch: Batch, part: int, consumer: str, added: list[bytes]) -> None:
        """Deletes the consumer's oldest entries down to the cap: among those stored and those this
        batch `added` (the batch deletes none of this consumer's before its trim)."""
        counters = batch.counters_of(part, consumer)
        excess = counters.inbox_size - self.timeline_cap
        stored = []
        for key, _ in self.store.scan(keys.user_prefix(part, keys.INBOX, consumer)):
            stored.append(key)
            if len(stored) >= excess:
                break
        for key in sorted({*stored, *added})[:excess]:
            if batch.delete_existing(key):
                counters.inbox_size -= 1

    def remove(self, post_id: int, consumers: Iterable[str]) -> int:
        """Removes a post from every consumer's inbox, leaving a tombstone against late copies."""
        batch = self.batches.new()
        removed = 0
        for consumer in consumers:
            part = self.partition(consumer)
            batch.put(keys.post_key(part, keys.DELETED, consumer, post_id), b"")
            if batch.delete_existing(keys.post_key(part, keys.INBOX, consumer, post_id)):
                batch.counters_of(part, consumer).inbox_size -= 1
                removed += 1
        batch.commit()
        return removed

    def purge_author(self, batch: Batch, part: int, consumer: str, author: str) -> None:
        """Deletes every post of `author` from the consumer's inbox, in `batch` (an unfollow's)."""
        counters = batch.counters_of(part, consumer)
        for key, raw in self.store.scan(keys.user_prefix(part, keys.INBOX, consumer)):
            if feed_pb2.Post.FromString(raw).author == author and batch.delete_existing(key):
                counters.inbox_size -= 1

    def read(self, consumer: str, limit: int, before_id: int = 0) -> list[bytes]:
        """The newest `limit` entries below `before_id` (0: from the newest), as stored."""
        part = self.partition(consumer)
        start = keys.post_key(part, keys.INBOX, consumer, before_id - 1) if before_id else None
        return newest_values(self.store, keys.user_prefix(part, keys.INBOX, consumer), limit, start)

    # -- repair merge rules (node/repair.py) -----------------------------------------------------

    def merge_entry(self, key: bytes, value: bytes) -> int:
        """Another replica's entry: inserted under the same rules as a fan-out's (edge, tombstone, cap)."""
        if self.store.get(key) is not None:
            return 0
        return self.insert([feed_pb2.Post.FromString(value)], [keys.user_of(key).decode("utf-8")])

    def merge_tombstone(self, key: bytes, value: bytes) -> int:
        """Another replica's tombstone: the entry goes here too."""
        if self.store.get(key) is not None:
            return 0
        self.remove(keys.post_id_of(key), [keys.user_of(key).decode("utf-8")])
        return 1
