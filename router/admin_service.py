"""feedring.v1.Admin: the operator's view of the cluster, gathered from every node at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from common.errors import FeedringError
from common.grpc_status import grpc_errors, grpc_errors_stream
from common.process_stats import rss_bytes
from common.storage_client import StorageClient
from feed.hot_cache import HotPostCache
from feed.hot_users import HotUsers
from protos import admin_pb2, admin_pb2_grpc, cluster_pb2, storage_pb2
from router.bulk_load import BulkLoader
from router.membership import MembershipChanges
from router.repairs import ClusterRepair

__all__ = ["AdminServicer"]


class AdminServicer(admin_pb2_grpc.AdminServicer):
    def __init__(
        self,
        storage: StorageClient,
        hot: HotUsers,
        cache: HotPostCache,
        bulk: BulkLoader,
        membership: MembershipChanges,
    ) -> None:
        self.membership = membership
        self.storage = storage
        self.bulk = bulk
        self.hot = hot
        self.cache = cache

    @grpc_errors
    async def GetClusterStatus(
        self, request: admin_pb2.GetClusterStatusRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ClusterStatus:
        cluster_map = self.storage.map
        primaries = cluster_map.primaries_by_node()
        nodes = await asyncio.gather(
            *(self._node_health(m.id, m.address, primaries.get(m.id, 0)) for m in cluster_map.members)
        )
        return admin_pb2.ClusterStatus(
            epoch=cluster_map.epoch,
            partitions=cluster_map.partitions,
            replication_factor=cluster_map.replication_factor,
            nodes=nodes,
            hot_users=self.hot.hot_now(),
            hot_registry=[
                admin_pb2.HotUser(user=v.user, state=v.state.name, pinned=v.pinned, follower_count=v.follower_count)
                for v in self.hot.views()
            ],
            change=cluster_map.change,
            change_progress=self.membership.progress(),
            router=admin_pb2.RouterStats(
                cache_entries=len(self.cache),
                cache_capacity=self.cache.max_entries,
                cache_hits=self.cache.hits,
                cache_misses=self.cache.misses,
                rss_bytes=rss_bytes(),
            ),
        )

    async def _node_health(self, node_id: str, address: str, partitions: int) -> admin_pb2.NodeHealth:
        health = admin_pb2.NodeHealth(id=node_id, address=address, partitions=partitions)
        try:
            status = await self.storage.get_node_status.on_node(
                node_id, storage_pb2.GetNodeStatusRequest(), timeout_s=2.0
            )
        except FeedringError as exc:
            health.healthy, health.error = False, exc.message
            return health
        health.healthy = True
        health.keys_by_family.update(status.keys_by_family)
        health.requests_served = status.requests_served
        health.rss_bytes = status.rss_bytes
        health.delivery.CopyFrom(status.delivery)
        health.replication.CopyFrom(status.replication)
        health.disk_error = status.disk_error
        health.leveldb_cache_bytes = status.leveldb_cache_bytes
        return health

    @grpc_errors_stream
    async def ChangeMembership(
        self, request: admin_pb2.ChangeMembershipRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[admin_pb2.ChangeProgress]:
        async for progress in self.membership.request(request):
            yield progress

    @grpc_errors
    async def BulkFollow(
        self, request: admin_pb2.BulkFollowRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.BulkFollowResponse:
        created = await self.bulk.follow_many([(e.follower, e.followee) for e in request.edges])
        return admin_pb2.BulkFollowResponse(created=created)

    @grpc_errors_stream
    async def Repair(
        self, request: admin_pb2.RepairClusterRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[admin_pb2.RepairClusterProgress]:
        async for progress in ClusterRepair(self.storage).run(request):
            yield progress

    @grpc_errors
    async def GetClusterMap(
        self, request: admin_pb2.GetRouterMapRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.ClusterMap:
        return self.storage.map.to_proto()
