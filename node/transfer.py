"""Moving partitions between nodes, node to node: the source streams, the destination pulls.

Source (``stream``): opens a change-feed subscription and a LevelDB snapshot in one event-loop step,
sends the snapshot's keys of the moving partitions in chunks (read in a worker thread: plyvel
releases the GIL), then every write accepted since, until the partitions are sealed; then ``end``.
Destination (``pull``): clears any partial copy left by an interrupted attempt, applies the chunks
in order, and reports progress. Because a partition is a contiguous key range (node/keys.py), both
sides work on whole ranges and never look inside the data.

A destination killed midway simply pulls again from scratch when the change is resumed; nothing it
holds is served before the change commits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator

from common.errors import FailedPrecondition, FeedringError, Unavailable
from common.storage_client import StorageClient
from node import keys
from node.change_feed import ChangeFeed, ObservedStore
from node.ownership import Ownership
from node.store import Snapshot
from protos import storage_pb2

__all__ = ["PartitionMover"]

log = logging.getLogger(__name__)

CHUNK_KEYS = 1000
CONNECT_ATTEMPTS = 4  # a source that is not answering yet is asked again, 0.5 s, 1 s, 2 s later


def _take(it: Iterator[tuple[bytes, bytes]], count: int) -> list[tuple[bytes, bytes]]:
    out = []
    for item in it:
        out.append(item)
        if len(out) >= count:
            break
    return out


class PartitionMover:
    def __init__(self, node_id: str, store: ObservedStore, peers: StorageClient, ownership: Ownership) -> None:
        self.node_id = node_id
        self.store = store
        self.changes: ChangeFeed = store.changes
        self.peers = peers  # how this node reaches the others
        self.ownership = ownership

    # -- source ----------------------------------------------------------------------------------

    def seal(self, partitions: Iterable[int]) -> None:
        """Refuses writes to the partitions from now on and ends their streams after the last one."""
        self.ownership.seal(partitions)
        self.changes.end(self.ownership.sealed)

    async def stream(
        self, partitions: list[int], max_keys_per_second: int, destination: str
    ) -> AsyncIterator[storage_pb2.PartitionChunk]:
        # Same event-loop step: no write can fall between the snapshot and the subscription.
        subscription = self.changes.subscribe(partitions)
        snapshot = self.store.snapshot()
        started = time.monotonic()
        sent = 0
        try:
            total = await asyncio.to_thread(self._count, snapshot, partitions)
            log.info("streaming partitions to=%s partitions=%d keys=%d", destination, len(partitions), total)
            yield storage_pb2.PartitionChunk(total_keys=total)
            # Throttled transfers send small chunks often rather than one big chunk, then a pause.
            chunk_keys = min(CHUNK_KEYS, max(1, max_keys_per_second // 10)) if max_keys_per_second else CHUNK_KEYS
            for part in partitions:
                it = snapshot.scan(keys.partition_prefix(part))
                while batch := await asyncio.to_thread(_take, it, chunk_keys):
                    yield storage_pb2.PartitionChunk(entries=[storage_pb2.KeyValue(key=k, value=v) for k, v in batch])
                    sent += len(batch)
                    if max_keys_per_second:
                        ahead = sent / max_keys_per_second - (time.monotonic() - started)
                        if ahead > 0:
                            await asyncio.sleep(ahead)
            snapshot.close()
            yield storage_pb2.PartitionChunk(snapshot_done=True)
            log.info("snapshot sent to=%s keys=%d; following writes until sealed", destination, sent)
            while True:
                changes = await subscription.queue.get()
                if changes is None:
                    break
                while not subscription.queue.empty():  # batch what has piled up
                    more = subscription.queue.get_nowait()
                    if more is None:
                        subscription.queue.put_nowait(None)
                        break
                    changes += more
                yield storage_pb2.PartitionChunk(
                    entries=[storage_pb2.KeyValue(key=k, value=v, deleted=d) for k, v, d in changes]
                )
            yield storage_pb2.PartitionChunk(end=True)
            log.info("stream ended (sealed) to=%s partitions=%d", destination, len(partitions))
        finally:
            self.changes.unsubscribe(subscription)
            snapshot.close()

    @staticmethod
    def _count(snapshot: Snapshot, partitions: list[int]) -> int:
        total = 0
        for part in partitions:
            for _ in snapshot.scan(keys.partition_prefix(part)):
                total += 1
        return total

    # -- destination -----------------------------------------------------------------------------

    async def pull(self, request: storage_pb2.PullPartitionsRequest) -> AsyncIterator[storage_pb2.PullProgress]:
        partitions = list(request.partitions)
        cleared = await asyncio.to_thread(self._delete_partitions, partitions)
        if cleared:
            log.info("cleared a partial copy source=%s keys=%d", request.source_id, cleared)
        progress = storage_pb2.PullProgress()
        log.info(
            "pulling partitions from=%s (%s) partitions=%d",
            request.source_id,
            request.source_address,
            len(partitions),
        )
        request_stream = storage_pb2.StreamPartitionsRequest(
            epoch=request.epoch,
            partitions=partitions,
            max_keys_per_second=request.max_keys_per_second,
            destination=self.node_id,
        )
        for attempt in range(CONNECT_ATTEMPTS):
            started = False
            try:
                async for chunk in self.peers.stream_partitions.at(
                    request.source_address, request_stream, node_id=request.source_id
                ):
                    started = True
                    if chunk.total_keys:
                        progress.total_keys = chunk.total_keys
                    if chunk.entries:
                        self._apply(chunk.entries)
                        progress.keys += len(chunk.entries)
                        progress.bytes += sum(len(e.key) + len(e.value) for e in chunk.entries)
                    if chunk.snapshot_done:
                        progress.snapshot_done = True
                    if chunk.end:
                        progress.done = True
                    yield progress
                break
            except Unavailable as exc:
                # A source just restarted can refuse the first call while this node's channel to it is
                # still in reconnect backoff: nothing was received, so trying again is safe.
                if started or attempt == CONNECT_ATTEMPTS - 1:
                    raise Unavailable(f"the transfer from {request.source_id} broke off: {exc.message}") from exc
                await asyncio.sleep(0.5 * 2**attempt)
            except FeedringError as exc:
                raise Unavailable(f"the transfer from {request.source_id} broke off: {exc.message}") from exc
        if not progress.done:
            raise Unavailable(f"source {request.source_id} ended the transfer before sealing it")
        log.info("pulled partitions from=%s keys=%d bytes=%d", request.source_id, progress.keys, progress.bytes)

    def _apply(self, entries: Iterable[storage_pb2.KeyValue]) -> None:
        puts = [(e.key, e.value) for e in entries if not e.deleted]
        deletes = [e.key for e in entries if e.deleted]
        for key, _ in puts:
            if keys.is_node_wide(key):
                raise FailedPrecondition("a transfer may only carry partition keys")
        self.store.write_unpublished(puts, deletes)

    # -- both ------------------------------------------------------------------------------------

    def _delete_partitions(self, partitions: Iterable[int]) -> int:
        deleted = 0
        for part in partitions:
            while batch := [k for k, _ in _take(self.store.scan(keys.partition_prefix(part)), 10_000)]:
                self.store.write_unpublished([], batch)
                deleted += len(batch)
        return deleted

    async def drop(self, partitions: list[int]) -> int:
        deleted = await asyncio.to_thread(self._delete_partitions, partitions)
        log.info("dropped partitions no longer owned partitions=%d keys=%d", len(partitions), deleted)
        return deleted
