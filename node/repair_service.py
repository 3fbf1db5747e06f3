"""The anti-entropy half of feedring.v1.Storage on a node: digests, buckets, merges, repairs, and
which delivery records it holds (node/repair.py does the comparing, node/feed_store.py's pieces the
merging)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from common.errors import InvalidArgument, WrongEpoch
from common.grpc_status import grpc_errors, grpc_errors_stream
from node import keys, repair
from node.delivery_log import RecordsWritten
from node.feed_store import FeedStore
from node.ownership import Ownership
from node.repair import Repairer
from protos import storage_pb2

__all__ = ["RepairServicer"]


class RepairServicer:
    def __init__(
        self, data: FeedStore, ownership: Ownership, repairer: Repairer, records_written: RecordsWritten
    ) -> None:
        self.data = data
        self.ownership = ownership
        self.repairer = repairer
        self.records_written = records_written

    @grpc_errors
    async def GetDigests(
        self, request: storage_pb2.GetDigestsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.GetDigestsResponse:
        self.ownership.check_held(request.partitions)
        out = []
        for i, part in enumerate(request.partitions):
            # The asker's in-sync time, as the asker uses it: both sides leave out the same tombstones.
            since = request.in_sync_since_ms[i] if i < len(request.in_sync_since_ms) else 0
            if request.epoch != self.ownership.map.epoch:
                since = 0  # the asker's replicas may not be this map's: collect nothing
            horizon = self.repairer.tombstones.horizon_since(since)
            if since:
                self.repairer.tombstones.note_in_sync(part, since, self.ownership.map.replicas(part))
            buckets, _ = await repair.digests_in_slices(self.data, part, self.repairer.reads_first, horizon)
            out.append(storage_pb2.PartitionDigest(partition=part, buckets=buckets))
        return storage_pb2.GetDigestsResponse(digests=out)

    @grpc_errors
    async def ReadBuckets(
        self, request: storage_pb2.ReadBucketsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ReadBucketsResponse:
        self.ownership.check_held([request.partition])
        if any(b >= repair.BUCKETS for b in request.buckets):
            raise InvalidArgument(f"buckets are numbered 0 to {repair.BUCKETS - 1}")
        entries = await asyncio.to_thread(repair.read_buckets, self.data, request.partition, request.buckets)
        return storage_pb2.ReadBucketsResponse(entries=entries)

    @grpc_errors
    async def MergeEntries(
        self, request: storage_pb2.MergeEntriesRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.MergeEntriesResponse:
        self.ownership.check_held([request.partition])
        prefix = keys.partition_prefix(request.partition)
        if any(not e.key.startswith(prefix) for e in request.entries):
            raise InvalidArgument(f"every entry must be in partition {request.partition}")
        changed = repair.merge(self.data, ((e.key, e.value) for e in request.entries))
        if changed:
            self.records_written.note([request.partition])  # a merged delete may owe a retraction
        return storage_pb2.MergeEntriesResponse(changed=changed)

    @grpc_errors_stream
    async def Repair(
        self, request: storage_pb2.RepairRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[storage_pb2.RepairProgress]:
        ownership = self.ownership
        partitions = sorted(set(request.partitions)) if request.partitions else sorted(ownership.owned)
        if request.catch_up:
            arriving = set(partitions) - ownership.writable
            if arriving:
                raise WrongEpoch(
                    f"node {ownership.node_id} is not receiving partitions {sorted(arriving)[:10]} "
                    f"at epoch {ownership.map.epoch}",
                    ownership.map.epoch,
                )
        else:
            ownership.check_held(partitions)
        async for progress in self.repairer.repair(partitions, request.max_keys_per_second, request.catch_up):
            yield progress
        if request.catch_up:
            await self.data.batches.recount_keys()

    @grpc_errors
    async def HeldDeliveries(
        self, request: storage_pb2.HeldDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.HeldDeliveriesResponse:
        self.ownership.requests_served += 1
        if any(keys.family_of(k) != keys.DELIVERIES for k in request.keys):
            raise InvalidArgument("only delivery record keys (family D) can be asked about")
        return storage_pb2.HeldDeliveriesResponse(held=self.data.deliveries.held(request.keys))
