"""Batches.recount_keys: two recounts at once (two partitions pulled in a membership change) each
keep and drop their own tally of the writes that commit meanwhile."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest

from node import batch as batch_module
from node.feed_store import FeedStore
from node.store import MemoryStore
from protos import feed_pb2


def test_two_recounts_at_once_each_drop_their_own_tally(monkeypatch: pytest.MonkeyPatch) -> None:
    gates = [threading.Event(), threading.Event()]
    started: list[int] = []

    def gated_count(snapshot: object) -> Counter[bytes]:
        mine = len(started)
        started.append(mine)
        gates[mine].wait(5)
        return Counter()  # the snapshots were empty

    real_count = batch_module._count
    monkeypatch.setattr(batch_module, "_count", gated_count)

    async def main() -> None:
        feed = FeedStore(MemoryStore(), 16, 100)
        first = asyncio.create_task(feed.batches.recount_keys())
        second = asyncio.create_task(feed.batches.recount_keys())
        while len(started) < 2:
            await asyncio.sleep(0.01)
        # Both tallies see this one.
        feed.posts.store_post("ann", feed_pb2.Post(id=1, author="ann", text="one", created_at_ms=1))
        gates[1].set()  # the second recount ends first, while the two tallies are equal
        await second
        feed.posts.store_post("ann", feed_pb2.Post(id=2, author="ann", text="two", created_at_ms=2))
        gates[0].set()
        await first  # raised ValueError (its tally was the one dropped) before the fix
        # The snapshots were empty, so the counts are exactly what the first recount's tally saw.
        assert +feed.batches.family_counts == +real_count(feed.store)

    asyncio.run(main())
