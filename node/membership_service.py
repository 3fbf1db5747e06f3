"""The membership half of feedring.v1.Storage on a node: maps, and moving partitions.

router/membership.py drives a change; node/transfer.py moves the data; node/ownership.py holds the
map. Each method checks what the node holds against what the call asks, then delegates.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc

from common.cluster_map import ClusterMap
from common.errors import FailedPrecondition
from common.grpc_status import grpc_errors, grpc_errors_stream
from node.batch import Batches
from node.delivery_log import RecordsWritten
from node.ownership import Ownership
from node.transfer import PartitionMover
from protos import cluster_pb2, storage_pb2

__all__ = ["MembershipServicer"]

log = logging.getLogger(__name__)


class MembershipServicer:
    def __init__(
        self, ownership: Ownership, mover: PartitionMover, batches: Batches, records_written: RecordsWritten
    ) -> None:
        self.ownership = ownership
        self.mover = mover
        self.batches = batches  # recounted after a transfer or a drop
        self.records_written = records_written

    @grpc_errors
    async def SetClusterMap(
        self, request: cluster_pb2.ClusterMap, context: grpc.aio.ServicerContext
    ) -> storage_pb2.SetClusterMapResponse:
        before = self.ownership.owned
        adopted = self.ownership.adopt(ClusterMap.from_proto(request))
        # Gained partitions arrive with the delivery records they owe, and a commit can make this
        # node the driver of partitions it already held: the driver looks at once.
        self.records_written.note(self.ownership.owned - before)
        return storage_pb2.SetClusterMapResponse(epoch=self.ownership.map.epoch, adopted=adopted)

    @grpc_errors
    async def GetClusterMap(
        self, request: storage_pb2.GetClusterMapRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.ClusterMap:
        current = self.ownership.map
        if request.known_epoch and request.known_epoch >= current.epoch:
            return cluster_pb2.ClusterMap(epoch=current.epoch)  # nothing newer: skip the table
        return current.to_proto()

    @grpc_errors_stream
    async def StreamPartitions(
        self, request: storage_pb2.StreamPartitionsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[storage_pb2.PartitionChunk]:
        not_owned = set(request.partitions) - self.ownership.owned
        if not_owned:
            raise FailedPrecondition(
                f"node {self.ownership.node_id} does not own partitions {sorted(not_owned)[:10]} "
                f"at epoch {self.ownership.map.epoch}"
            )
        partitions = list(request.partitions)
        async for chunk in self.mover.stream(partitions, request.max_keys_per_second, request.destination):
            yield chunk

    @grpc_errors_stream
    async def PullPartitions(
        self, request: storage_pb2.PullPartitionsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[storage_pb2.PullProgress]:
        owned = set(request.partitions) & self.ownership.owned
        if owned:
            raise FailedPrecondition(
                f"node {self.ownership.node_id} already owns partitions {sorted(owned)[:10]}: "
                "refusing to overwrite them"
            )
        try:
            async for progress in self.mover.pull(request):
                yield progress
        finally:
            await self.batches.recount_keys()

    @grpc_errors
    async def SealPartitions(
        self, request: storage_pb2.SealPartitionsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.SealPartitionsResponse:
        if request.unseal:
            self.ownership.unseal(request.partitions)
        else:
            self.mover.seal(request.partitions)
        log.info("partitions %s count=%d", "unsealed" if request.unseal else "sealed", len(request.partitions))
        return storage_pb2.SealPartitionsResponse()

    @grpc_errors
    async def DropPartitions(
        self, request: storage_pb2.DropPartitionsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.DropPartitionsResponse:
        owned = set(request.partitions) & self.ownership.owned
        if owned:
            raise FailedPrecondition(
                f"node {self.ownership.node_id} still owns partitions {sorted(owned)[:10]} at epoch "
                f"{self.ownership.map.epoch}; only partitions moved away can be dropped"
            )
        self.ownership.unseal(request.partitions)
        deleted = await self.mover.drop(list(request.partitions))
        await self.batches.recount_keys()
        return storage_pb2.DropPartitionsResponse(keys_deleted=deleted)
