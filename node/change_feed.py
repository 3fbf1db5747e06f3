"""Forwarding for partition moves: every write to a moving partition also goes to its new owner.

The node's Store is wrapped so that each atomic write, after it is applied, is published to the
subscriptions of the partitions it touches. A subscription is opened by a transfer in the same
event-loop step as its LevelDB snapshot, so snapshot + published writes = every write, in order,
exactly once; replaying them on the destination yields the same partition. Sealing a partition
ends its subscriptions after the last write it accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from node import keys
from node.sparse_families import SparseFamilies
from node.store import Snapshot, Store
from node.timeline_cache import TimelineCache

__all__ = ["ChangeFeed", "Subscription", "ObservedStore", "Change"]

# (key, value, deleted)
Change = tuple[bytes, bytes, bool]


@dataclass(eq=False)
class Subscription:
    partitions: frozenset[int]
    queue: asyncio.Queue[list[Change] | None] = field(default_factory=asyncio.Queue)
    ended: bool = False

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self.queue.put_nowait(None)  # None marks the end, after every earlier change


class ChangeFeed:
    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    def subscribe(self, partitions: Iterable[int]) -> Subscription:
        sub = Subscription(frozenset(partitions))
        self._subscriptions.append(sub)
        return sub

    @property
    def subscribed(self) -> bool:
        return bool(self._subscriptions)

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    def end(self, partitions: Iterable[int]) -> None:
        """Ends every subscription whose partitions are all in `partitions` (they were sealed)."""
        sealed = frozenset(partitions)
        for sub in self._subscriptions:
            if sub.partitions <= sealed:
                sub.end()

    def publish(self, puts: list[tuple[bytes, bytes]], deletes: list[bytes]) -> None:
        for sub in self._subscriptions:
            if sub.ended:
                continue
            changes = [(k, v, False) for k, v in puts if keys.partition_of_key(k) in sub.partitions]
            changes += [(k, b"", True) for k in deletes if keys.partition_of_key(k) in sub.partitions]
            if changes:
                sub.queue.put_nowait(changes)


class ObservedStore:
    """A Store whose writes are published to a ChangeFeed after they are applied, and which tells
    the timeline cache what each write may change before it is applied."""

    def __init__(self, inner: Store, changes: ChangeFeed, timeline_cache: TimelineCache | None = None) -> None:
        self.inner = inner
        self.changes = changes
        self.sparse = SparseFamilies()  # sees every put before it is written
        self.timeline_cache = timeline_cache if timeline_cache is not None else TimelineCache(0)
        self.get = inner.get  # the hottest call of all: no extra Python frame

    def rebind(self) -> None:
        """After the inner store reopened (node/server.py, a disk with room again): its new get."""
        self.get = self.inner.get

    def write(self, puts: Iterable[tuple[bytes, bytes]] = (), deletes: Iterable[bytes] = ()) -> None:
        puts = self.sparse.noted(puts)
        if len(self.timeline_cache):
            deletes = deletes if isinstance(deletes, (list, tuple)) else list(deletes)
            self.timeline_cache.forget(puts, deletes)
        if not self.changes.subscribed:  # the common case: no partition is moving
            self.inner.write(puts, deletes)
            return
        deletes = list(deletes)
        self.inner.write(puts, deletes)
        self.changes.publish(puts, deletes)

    def write_unpublished(self, puts: list[tuple[bytes, bytes]], deletes: list[bytes]) -> None:
        """A write that is not a change of the partition (a transfer applying what it receives, or
        dropping a partition: either may run in a worker thread, so the whole cache goes)."""
        self.timeline_cache.clear()
        try:
            self.inner.write(self.sparse.noted(puts), deletes)
        finally:
            self.timeline_cache.clear()

    def scan(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        return self.inner.scan(prefix, start=start, reverse=reverse)

    def scan_keys(self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False) -> Iterator[bytes]:
        return self.inner.scan_keys(prefix, start=start, reverse=reverse)

    def snapshot(self) -> Snapshot:
        return self.inner.snapshot()

    def close(self) -> None:
        self.inner.close()
