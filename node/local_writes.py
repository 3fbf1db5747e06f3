"""This node's own part of a replicated write: check ownership, apply it to the store, set going the
delivery work it may have recorded.

The coordinator (node/replication.py) calls it for its own keys, and ApplyWrites (a forward or a
hint from another node) for the keys sent here; either way the same declaration (node/writes.py)
decides what is checked and applied. Store calls run on the event loop thread: each is a few LevelDB
operations, and running them one at a time makes every write atomic with respect to the others
(the read-in-the-same-step guarantees of StorePost and AddFollower rely on it). A fan-out write is
applied a slice of consumers at a time as background work that stands back while reads arrive
(node/reads_first.py), so timeline reads never queue behind a fan-out batch.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from google.protobuf.message import Message

from node.delivery_log import RecordsWritten
from node.feed_store import FeedStore
from node.ownership import Ownership
from node.reads_first import ReadsFirst
from node.writes import AtomicWrite, FanoutWrite, ReplicatedWrite

__all__ = ["LocalWrites", "WRITE_SLICE"]

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)

# Consumers written per event-loop turn in a fan-out batch (about a millisecond of work).
WRITE_SLICE = 64


class LocalWrites:
    def __init__(
        self, data: FeedStore, ownership: Ownership, reads_first: ReadsFirst, records_written: RecordsWritten
    ) -> None:
        self.data = data
        self.ownership = ownership
        self.reads_first = reads_first
        self.records_written = records_written

    async def apply(self, write: ReplicatedWrite[Req, Resp], request: Req) -> Resp:
        return (await self.apply_noting_newer(write, request))[0]

    async def apply_noting_newer(self, write: ReplicatedWrite[Req, Resp], request: Req) -> tuple[Resp, int]:
        """The reply, and for a versioned atomic write the newest version this store already held
        for one of its keys, newer than the write's (0: none; node/replication.py stamps it again)."""
        epoch: int = getattr(request, "epoch", 0)
        if isinstance(write, FanoutWrite):
            return await self._in_slices(write, request, epoch), 0
        assert isinstance(write, AtomicWrite)
        self.ownership.check_write(epoch, *write.checked_keys(request), sealed_ok=write.sealed_ok)
        self.data.batches.take_superseding()  # no await from here to the next take: nothing else runs
        reply: Resp = write.apply(self.data, request)
        newer = self.data.batches.take_superseding() if write.versioned else 0
        if write.owes_delivery:
            self.records_written.note({self.data.partition(k) for k in write.keys(request)})
        return reply, newer

    async def _in_slices(self, write: FanoutWrite[Any, Resp], request: Any, epoch: int) -> Resp:
        """Each consumer's write stays atomic; ownership (and sealing) is checked per slice, and a
        batch refused midway is simply retried whole (the writes are idempotent)."""
        consumers = write.keys(request)
        posted_at_ms = write.posted_at_ms(request) if write.posted_at_ms else 0
        done = 0
        for start in range(0, len(consumers), WRITE_SLICE):
            age_s = time.time() - posted_at_ms / 1000 if posted_at_ms else 0.0
            async with self.reads_first.slice(age_s):
                part = consumers[start : start + WRITE_SLICE]
                self.ownership.check_write(epoch, *part)
                done += write.apply_slice(self.data, request, part)
        return write.reply(done)
