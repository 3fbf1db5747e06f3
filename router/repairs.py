"""`feedring repair`: which node repairs which partitions, and their progress added up.

Each partition is repaired by one of its replicas (node/repair.py does the comparing and copying):
for a whole-cluster repair, by the first replica this router believes up; with `--node`, the node
repairs every partition it holds; with `--partition`, the first live replica repairs that one. The
nodes run at once, each at the pace asked for; a node that cannot take part is reported, and the
partitions it was to repair are left for the next run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from common.errors import FeedringError, InvalidArgument, NotFound
from common.storage_client import StorageClient
from protos import admin_pb2, storage_pb2

__all__ = ["ClusterRepair"]


class ClusterRepair:
    def __init__(self, storage: StorageClient) -> None:
        self.storage = storage

    def plan(self, node_id: str, partition: int) -> dict[str, list[int]]:
        cluster_map = self.storage.map
        if partition >= cluster_map.partitions:
            raise InvalidArgument(f"partition must be below {cluster_map.partitions} (got {partition})")
        if node_id:
            if cluster_map.member(node_id) is None:
                raise NotFound(
                    f"node {node_id} is not in the cluster (members: {', '.join(m.id for m in cluster_map.members)})"
                )
            return {node_id: sorted(cluster_map.owned_by(node_id))}
        plan: dict[str, list[int]] = {}
        for part in [partition] if partition >= 0 else range(cluster_map.partitions):
            replicas = cluster_map.replicas(part)
            up = [n for n in replicas if self.storage.health.allows(cluster_map.address(n))] or list(replicas)
            plan.setdefault(up[0], []).append(part)
        return plan

    async def run(self, request: admin_pb2.RepairClusterRequest) -> AsyncIterator[admin_pb2.RepairClusterProgress]:
        partition = request.partition if request.HasField("partition") else -1
        if partition < -1:
            raise InvalidArgument(f"partition must be 0 or more (got {partition})")
        plan = self.plan(request.node_id, partition)
        if request.node_id and partition >= 0:
            plan = {request.node_id: [p for p in plan[request.node_id] if p == partition]}
            if not plan[request.node_id]:
                raise InvalidArgument(f"node {request.node_id} holds no replica of partition {partition}")
        latest: dict[str, storage_pb2.RepairProgress] = {
            n: storage_pb2.RepairProgress(partitions_total=len(parts)) for n, parts in plan.items()
        }
        failed: set[str] = set()
        updates: asyncio.Queue[None] = asyncio.Queue()

        async def one(node_id: str, partitions: list[int]) -> None:
            try:
                stream = self.storage.repair.at(
                    self.storage.map.address(node_id),
                    storage_pb2.RepairRequest(partitions=partitions, max_keys_per_second=request.max_keys_per_second),
                    node_id=node_id,
                )
                async for progress in stream:
                    latest[node_id] = progress
                    updates.put_nowait(None)
            except FeedringError:
                failed.add(node_id)
            finally:
                updates.put_nowait(None)

        tasks = [asyncio.create_task(one(n, parts)) for n, parts in plan.items()]
        try:
            yield self._total(latest, failed, done=False)
            while not all(t.done() for t in tasks):
                await updates.get()
                yield self._total(latest, failed, done=False)
            yield self._total(latest, failed, done=True)
        finally:
            for task in tasks:
                task.cancel()

    @staticmethod
    def _total(
        latest: dict[str, storage_pb2.RepairProgress], failed: set[str], done: bool
    ) -> admin_pb2.RepairClusterProgress:
        unreachable = set(failed)
        for progress in latest.values():
            unreachable.update(progress.unreachable)
        return admin_pb2.RepairClusterProgress(
            partitions_total=sum(p.partitions_total for p in latest.values()),
            partitions_done=sum(p.partitions_done for p in latest.values()),
            out_of_sync=sum(p.out_of_sync for p in latest.values()),
            keys_repaired=sum(p.keys_repaired for p in latest.values()),
            unreachable=sorted(unreachable),
            done=done,
        )
