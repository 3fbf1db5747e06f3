"""The change feed that forwards writes of moving partitions: snapshot + feed = every write, once."""

from __future__ import annotations

import asyncio

from node.change_feed import ChangeFeed, ObservedStore
from node.keys import partition_prefix
from node.store import MemoryStore


def key(partition: int, name: bytes) -> bytes:
    return partition_prefix(partition) + name


def test_only_writes_to_subscribed_partitions_are_published_in_order() -> None:
    async def scenario() -> None:
        feed = ChangeFeed()
        store = ObservedStore(MemoryStore(), feed)
        store.write([(key(1, b"before"), b"x")])
        sub = feed.subscribe([1, 2])
        snapshot = store.snapshot()
        store.write([(key(1, b"a"), b"1"), (key(3, b"other"), b"!")])
        store.write([(key(2, b"b"), b"2")], [key(1, b"before")])
        feed.end([1, 2])
        store.write([(key(1, b"late"), b"x")])  # after the seal: not forwarded
        got = []
        while (item := await sub.queue.get()) is not None:
            got.extend(item)
        assert got == [(key(1, b"a"), b"1", False), (key(2, b"b"), b"2", False), (key(1, b"before"), b"", True)]
        # Replaying snapshot + feed reproduces the partitions exactly.
        replica = MemoryStore()
        replica.write(list(snapshot.scan(partition_prefix(1))) + list(snapshot.scan(partition_prefix(2))))
        for k, v, deleted in got:
            replica.write([] if deleted else [(k, v)], [k] if deleted else [])
        for part in (1, 2):
            expected = [kv for kv in store.scan(partition_prefix(part)) if kv[0] != key(1, b"late")]
            assert list(replica.scan(partition_prefix(part))) == expected

    asyncio.run(scenario())


def test_sealing_only_ends_subscriptions_fully_covered() -> None:
    feed = ChangeFeed()
    both = feed.subscribe([1, 2])
    one = feed.subscribe([1])
    feed.end([1])
    assert one.ended and not both.ended
