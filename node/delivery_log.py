"""Delivery records: the durable list of work a node owes its authors' followers.

A record is written in the same atomic batch as the post (or the delete) that owes it
(node/feed_store.py), under the author key's partition (family D in node/keys.py). So it is on disk
before the post is acknowledged, survives any crash of the router or of this node, and moves with
its partition when membership changes. node/delivery.py carries records out and removes each only
once every follower's inbox has it; a checkpoint (the last follower done) saves redoing pages.
This module builds, lists, checkpoints and removes records; it does no I/O beyond the store.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterable

from node import keys
from node.batch import Batches
from protos import feed_pb2, storage_pb2

__all__ = [
    "INSERT",
    "RETRACT",
    "COUNT",
    "insert",
    "retract",
    "report_count",
    "DeliveryLog",
    "RecordsWritten",
    "FinishedEarly",
]

Delivery = storage_pb2.Delivery
INSERT = Delivery.INSERT
RETRACT = Delivery.RETRACT
COUNT = Delivery.COUNT


SCAN_SLICE_S = 0.002  # a look over every partition's records yields the loop this often


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


class RecordsWritten:
    """Partitions where records were just written: writers note them, and the delivery driver
    (node/delivery.py) looks there at once instead of at its next idle poll."""

    def __init__(self) -> None:
        self.partitions: set[int] = set()
        self.event = asyncio.Event()

    def note(self, partitions: Iterable[int]) -> None:
        self.partitions.update(partitions)
        self.event.set()

    def take(self) -> set[int]:
        taken, self.partitions = self.partitions, set()
        return taken


class FinishedEarly:
    """Records whose finishing note reached this replica before the record did.

    A replica that refused a post's write (its partition sealed for a membership move, or the
    replica down) gets it later from a hint, and the driver's note that the delivery is done can
    arrive first. The late write would bring the record back, and ORPHAN_AFTER_S later this
    replica would adopt it and deliver the post again (seen after every move: 37-84 records each
    time, 81 of 81 finished ~0.3 s before they were written). So a finish that finds no record is
    remembered, and the write of that record skips it. Kept in memory, the newest KEEP for up to
    TTL_S: past that, or after a restart, the record comes back and is delivered once more, which is
    idempotent (only slower). A record key names one post's insert or retraction, never written
    anew for another: remembering it cannot skip a delivery still owed."""

    KEEP = 1 << 16
    TTL_S = 3600.0

    def __init__(self) -> None:
        self._keys: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def note(self, key: bytes) -> None:
        self._keys[key] = time.monotonic()
        self._keys.move_to_end(key)
        if len(self._keys) > self.KEEP:
            self._keys.popitem(last=False)

    def take(self, key: bytes) -> bool:
        """Whether the record `key` was finished before it arrived (forgotten once asked)."""
        noted = self._keys.pop(key, None)
        return noted is not None and time.monotonic() - noted < self.TTL_S


class DeliveryLog:
    def __init__(self, batches: Batches, partition: Callable[[str], int], finished_early: FinishedEarly) -> None:
        self.batches = batches
        self.store = batches.store
        self.partition = partition
        self.finished_early = finished_early  # shared with node/posts.py, which writes the records

    def key(self, author_key: str, post_id: int, kind: int) -> bytes:
        return keys.delivery_key(self.partition(author_key), author_key, post_id, kind)

    def pending(
        self, partitions: Iterable[int], limit: int, from_partition: int = 0
    ) -> list[tuple[bytes, storage_pb2.Delivery]]:
        """Up to `limit` records of `partitions`, in key order from `from_partition` on, then
        wrapping round to those before it."""
        out: list[tuple[bytes, storage_pb2.Delivery]] = []
        ordered = sorted(partitions)
        first = next((i for i, p in enumerate(ordered) if p >= from_partition), 0)
        for part in ordered[first:] + ordered[:first]:
            for key, raw in self.store.scan(keys.family_prefix(part, keys.DELIVERIES)):
                out.append((key, Delivery.FromString(raw)))
                if len(out) >= limit:
                    return out
        return out

    def partitions_with_records(self, partitions: Iterable[int]) -> set[int]:
        """A full scan (slow on a big store: run it in a thread): which partitions hold records."""
        found = set()
        for part in partitions:
            for _ in self.store.scan(keys.family_prefix(part, keys.DELIVERIES)):
                found.add(part)
                break
        return found

    def count(self) -> int:
        return max(self.batches.family_counts[keys.DELIVERIES], 0)

    async def records_in_slices(
        self, partitions: Iterable[int], slice_s: float = SCAN_SLICE_S
    ) -> AsyncGenerator[tuple[bytes, storage_pb2.Delivery], None]:
        """Every record of `partitions`, yielding the event loop after each `slice_s` of scanning:
        for the looks that range over every partition a node holds (the oldest record, orphans).
        Each seek steps over the deletion markers finished records leave, so in one step such a
        look held a loaded node's loop for tens of ms (its longest stalls, measured). On the loop,
        not in a thread: a thread parsing records would hold the GIL against the loop's store calls
        (each releases it, then waits up to the 5 ms switch interval to have it back)."""
        until = time.monotonic() + slice_s
        for part in sorted(partitions):
            for key, raw in self.store.scan(keys.family_prefix(part, keys.DELIVERIES)):
                yield key, Delivery.FromString(raw)
            if time.monotonic() >= until:
                await asyncio.sleep(0)
                until = time.monotonic() + slice_s

    async def oldest(self, partitions: Iterable[int], n: int = 1) -> list[tuple[int, bytes]]:
        """The `n` oldest records in `partitions`, oldest first: when each was created (ms) and its
        key (none: empty). A scan that parses every record, so callers look rarely (node/delivery.py)."""
        found: list[tuple[int, bytes]] = []
        async for key, record in self.records_in_slices(partitions):
            item = (record.created_at_ms, key)
            if len(found) < n or item < found[-1]:
                bisect.insort(found, item)
                del found[n:]
        return found

    def get(self, key: bytes) -> storage_pb2.Delivery | None:
        raw = self.store.get(key)
        return Delivery.FromString(raw) if raw is not None else None

    def held(self, record_keys: Iterable[bytes]) -> list[bool]:
        """Which of these records are on disk here."""
        return [self.store.get(k) is not None for k in record_keys]

    def checkpoint(self, key: bytes, record: storage_pb2.Delivery) -> None:
        """Saves progress, unless the record is gone (finished, replaced or dropped with its partition)."""
        if self.store.get(key) is not None:
            batch = self.batches.new()
            batch.put(key, record.SerializeToString())
            batch.commit()

    def finish(self, key: bytes, up_to_version: int | None = None) -> int:
        """Removes a record; with `up_to_version`, only if no newer change has overwritten it since.
        Returns 1 if removed."""
        batch = self.batches.new()
        raw = batch.get(key)
        if raw is None:
            if up_to_version is None:  # an insert's or a retraction's: its record may still be on its way
                self.finished_early.note(key)
            return 0
        if up_to_version is not None and Delivery.FromString(raw).version > up_to_version:
            return 0
        batch.delete_existing(key)
        batch.commit()
        return 1
