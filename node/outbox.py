"""Background writes to one peer, sent together: what queues while an ApplyWrites to a node is in
flight goes in the next one, as one call.

A node delivering several posts at once (node/delivery.py keeps a few records in flight) forwards
each page of followers to every other replica; without this, each page is its own ApplyWrites call
per replica, and a busy node spends its time on calls rather than on writes. Only background work
is coalesced (fan-out pages, finished-delivery notes): a user's write never waits behind a page.
Nothing waits to be batched: an idle outbox sends at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from common.errors import FeedringError
from common.storage_client import StorageClient
from protos import storage_pb2

__all__ = ["Outboxes", "MAX_WRITES_PER_CALL", "MAX_BYTES_PER_CALL"]

MAX_WRITES_PER_CALL = 64
MAX_BYTES_PER_CALL = 4 << 20


@dataclass
class _Outbox:
    queued: list[tuple[storage_pb2.ReplicaWrite, asyncio.Future[storage_pb2.WriteResult]]] = field(default_factory=list)
    sending: bool = False


class Outboxes:
    def __init__(self, peers: StorageClient, timeout_s: float) -> None:
        self.peers = peers
        self.timeout_s = timeout_s
        self.calls = 0  # ApplyWrites calls sent, and the writes they carried: their ratio is the batching
        self.writes = 0
        self._boxes: dict[str, _Outbox] = {}

    async def send(self, node_id: str, write: storage_pb2.ReplicaWrite) -> storage_pb2.WriteResult:
        """`write`'s result on `node_id`; a failed call raises its FeedringError for every write in it."""
        box = self._boxes.setdefault(node_id, _Outbox())
        result: asyncio.Future[storage_pb2.WriteResult] = asyncio.get_running_loop().create_future()
        box.queued.append((write, result))
        if not box.sending:
            box.sending = True
            asyncio.get_running_loop().create_task(self._flush(node_id, box))
        return await result

    async def _flush(self, node_id: str, box: _Outbox) -> None:
        try:
            while box.queued:
                batch: list[tuple[storage_pb2.ReplicaWrite, asyncio.Future[storage_pb2.WriteResult]]] = []
                size = 0
                while box.queued and len(batch) < MAX_WRITES_PER_CALL:
                    write, result = box.queued[0]
                    if batch and size + len(write.request) > MAX_BYTES_PER_CALL:
                        break
                    batch.append(box.queued.pop(0))
                    size += len(write.request)
                self.calls += 1
                self.writes += len(batch)
                try:
                    reply = await self.peers.apply_writes.on_node(
                        node_id, storage_pb2.ApplyWritesRequest(writes=[w for w, _ in batch]), timeout_s=self.timeout_s
                    )
                except FeedringError as exc:
                    for _, result in batch:
                        if not result.done():
                            result.set_exception(exc)
                    continue
                for (_, result), answer in zip(batch, reply.results, strict=False):
                    if not result.done():
                        result.set_result(answer)
        finally:
            box.sending = False
