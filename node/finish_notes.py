"""Finished-delivery notes to a partition's other replicas, sent together a moment later.

The driving replica removes a finished record from its own store at once (node/delivery.py). The
other replicas only need the word before they would drive the record themselves: a takeover when
the driver has been down for TAKEOVER_AFTER_S, an orphan check after ORPHAN_AFTER_S
(node/delivery_takeover.py). So the notes wait up to LINGER_S and go as one replicated write, cut per
replica to the partitions it holds. Sent one by one, each post's note was an ApplyWrites call to each
other replica: 2 of the 7 calls a post cost the cluster at RF=3 (a hot author's post, whose record is
finished at once, and a post to a few followers alike; measured 2026-12-06). A note that never
arrives (this node dies first) only makes a replica deliver the post again, which is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from common.errors import FeedringError
from node import writes
from node.replication import Replicator
from protos import storage_pb2

__all__ = ["FinishNotes", "LINGER_S", "MAX_NOTES_PER_WRITE"]

log = logging.getLogger(__name__)

LINGER_S = 0.05  # far below the 2 s before a replica takes a driver's records over
MAX_NOTES_PER_WRITE = 1024  # a full batch goes at once (~40 bytes a note)


class FinishNotes:
    def __init__(self, replicator: Replicator, linger_s: float = LINGER_S) -> None:
        self.replicator = replicator
        self.linger_s = linger_s
        self.writes = 0  # replicated writes sent, and the notes they carried: their ratio is the batching
        self.notes = 0
        self._queued: list[storage_pb2.FinishedDelivery] = []
        self._full = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None

    def add(self, note: storage_pb2.FinishedDelivery) -> None:
        """Queues `note`; it is sent within `linger_s`, with every note queued meanwhile."""
        self._queued.append(note)
        if len(self._queued) >= MAX_NOTES_PER_WRITE:
            self._full.set()
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while self._queued:
            if not self._full.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.linger_s):
                        await self._full.wait()
            notes, self._queued = self._queued[:MAX_NOTES_PER_WRITE], self._queued[MAX_NOTES_PER_WRITE:]
            if len(self._queued) < MAX_NOTES_PER_WRITE:
                self._full.clear()
            self.writes += 1
            self.notes += len(notes)
            request = storage_pb2.FinishDeliveriesRequest(finished=notes)
            try:
                await self.replicator.write(writes.FINISH_DELIVERIES, request)
            except FeedringError as exc:  # the replicas that missed it got hints; the rest is harmless
                log.debug("delivery finishes not acknowledged by a quorum notes=%d error=%s", len(notes), exc.message)

    async def close(self, timeout_s: float = 1.0) -> None:
        """Sends what is queued now (a clean stop: the replicas need not find orphans), giving up
        after `timeout_s`."""
        if self._sender is None or self._sender.done():
            return
        self.linger_s = 0.0
        self._full.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self._sender)
        self._sender.cancel()
        await asyncio.gather(self._sender, return_exceptions=True)
