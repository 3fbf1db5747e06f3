"""feedring.v1.Admin: the operator's view of the cluster, gathered from every node at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc

from common.errors import FeedringError
from common.server_errors import grpc_errors
from protos import admin_pb2, admin_pb2_grpc, cluster_pb2, storage_pb2
from router.node_pool import NodePool

__all__ = ["AdminServicer"]


class AdminServicer(admin_pb2_grpc.AdminServicer):
    def __init__(self, pool: NodePool, hot_users: Callable[[], list[str]] = list) -> None:
        self.pool = pool
        self.hot_users = hot_users

    @grpc_errors
    async def GetClusterStatus(
        self, request: admin_pb2.GetClusterStatusRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ClusterStatus:
        cluster_map = self.pool.map
        primaries = cluster_map.primaries_by_node()
        nodes = await asyncio.gather(
            *(self._node_health(m.id, m.address, primaries.get(m.id, 0)) for m in cluster_map.members)
        )
        return admin_pb2.ClusterStatus(
            epoch=cluster_map.epoch,
            partitions=cluster_map.partitions,
            replication_factor=cluster_map.replication_factor,
            nodes=nodes,
            hot_users=sorted(self.hot_users()),
        )

    async def _node_health(self, node_id: str, address: str, partitions: int) -> admin_pb2.NodeHealth:
        health = admin_pb2.NodeHealth(id=node_id, address=address, partitions=partitions)
        try:
            status = await self.pool.call_node(
                node_id, "GetNodeStatus", storage_pb2.GetNodeStatusRequest(), timeout_s=2.0
            )
        except FeedringError as exc:
            health.healthy, health.error = False, exc.message
            return health
        health.healthy = True
        health.keys_by_family.update(status.keys_by_family)
        health.requests_served = status.requests_served
        health.rss_bytes = status.rss_bytes
        return health

    @grpc_errors
    async def GetClusterMap(
        self, request: admin_pb2.GetRouterMapRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.ClusterMap:
        return self.pool.map.to_proto()
