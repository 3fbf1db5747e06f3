"""Delivery records: the durable list of work a node owes its authors' followers.

A record is written in the same atomic batch as the post (or the delete) that owes it
(node/feed_store.py), under the author key's partition (family D in node/keys.py). So it is on disk
before the post is acknowledged, survives any crash of the router or of this node, and moves with
its partition when membership changes. node/delivery.py carries records out and removes each only
once every follower's inbox has it; a checkpoint (the last follower done) saves redoing pages.
This module builds, lists, checkpoints and removes records; it does no I/O beyond the store.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from node import keys
from protos import feed_pb2, storage_pb2

if TYPE_CHECKING:  # feed_store writes records with the helpers below
    from node.feed_store import FeedStore

__all__ = ["INSERT", "RETRACT", "COUNT", "insert", "retract", "report_count", "DeliveryLog"]

Delivery = storage_pb2.Delivery
INSERT = Delivery.INSERT
RETRACT = Delivery.RETRACT
COUNT = Delivery.COUNT


def _now_ms() -> int:
    return int(time.time() * 1000)


def insert(post: feed_pb2.Post, author: str, salted: bool, unless_hot: bool = False) -> storage_pb2.Delivery:
    """Copy `post` into every follower's inbox (`unless_hot`: only if the author has cooled down)."""
    return Delivery(
        kind=INSERT,
        post=post,
        post_id=post.id,
        author=author,
        salted=salted,
        unless_hot=unless_hot,
        created_at_ms=_now_ms(),
    )


def retract(post_id: int, author: str, salted: bool) -> storage_pb2.Delivery:
    """Remove post `post_id` from every follower's inbox (leaving tombstones against late copies)."""
    return Delivery(kind=RETRACT, post_id=post_id, author=author, salted=salted, created_at_ms=_now_ms())


def report_count(user: str, salted_key: str, version: int) -> storage_pb2.Delivery:
    """Report salted key `salted_key`'s follower count to `user`'s home (read when it is sent).
    One record per key, overwritten by each change: a burst of follows is one report."""
    return Delivery(kind=COUNT, author=user, key=salted_key, version=version, created_at_ms=_now_ms())


class DeliveryLog:
    def __init__(self, feed_store: FeedStore) -> None:
        self.feed_store = feed_store

    def pending(self, partitions: Iterable[int], limit: int) -> list[tuple[bytes, storage_pb2.Delivery]]:
        """Up to `limit` records of `partitions`, in key order."""
        out: list[tuple[bytes, storage_pb2.Delivery]] = []
        for part in sorted(partitions):
            for key, raw in self.feed_store.store.scan(keys.family_prefix(part, keys.DELIVERIES)):
                out.append((key, Delivery.FromString(raw)))
                if len(out) >= limit:
                    return out
        return out

    def partitions_with_records(self, partitions: Iterable[int]) -> set[int]:
        """A full scan (slow on a big store: run it in a thread): which partitions hold records."""
        found = set()
        for part in partitions:
            for _ in self.feed_store.store.scan(keys.family_prefix(part, keys.DELIVERIES)):
                found.add(part)
                break
        return found

    def count(self) -> int:
        return max(self.feed_store.family_counts[keys.DELIVERIES], 0)

    def oldest_age_s(self, partitions: Iterable[int]) -> float:
        """Age of the oldest record in `partitions` (0 when there is none), for status."""
        oldest = min(
            (
                Delivery.FromString(raw).created_at_ms
                for part in partitions
                for _, raw in self.feed_store.store.scan(keys.family_prefix(part, keys.DELIVERIES))
            ),
            default=0,
        )
        return max(_now_ms() - oldest, 0) / 1000 if oldest else 0.0

    def checkpoint(self, key: bytes, record: storage_pb2.Delivery) -> None:
        """Saves progress, unless the record is gone (finished, replaced or dropped with its partition)."""
        if self.feed_store.store.get(key) is not None:
            batch = self.feed_store.new_batch()
            batch.put(key, record.SerializeToString())
            batch.commit()

    def finish(self, key: bytes, up_to_version: int | None = None) -> None:
        """Removes a record; with `up_to_version`, only if no newer change has overwritten it since."""
        self.feed_store.finish_delivery(key, up_to_version)
