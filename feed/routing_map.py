"""The cluster map as a client needs it (feed.proto's RoutingMap): nodes' Feed addresses and each
partition's replicas, built once per epoch (1,024 partitions x 3 replicas is ~15 KB)."""

from __future__ import annotations

from common.cluster_map import ClusterMap
from protos import feed_pb2

__all__ = ["RoutingMaps"]


class RoutingMaps:
    def __init__(self) -> None:
        self._built: tuple[int, feed_pb2.RoutingMap] | None = None

    def of(self, cluster_map: ClusterMap) -> feed_pb2.RoutingMap:
        if self._built is None or self._built[0] != cluster_map.epoch:
            self._built = (cluster_map.epoch, routing_map(cluster_map))
        return self._built[1]


def routing_map(cluster_map: ClusterMap) -> feed_pb2.RoutingMap:
    index = {m.id: i for i, m in enumerate(cluster_map.members)}
    return feed_pb2.RoutingMap(
        epoch=cluster_map.epoch,
        partitions=cluster_map.partitions,
        nodes=[feed_pb2.RoutingNode(id=m.id, feed_address=m.feed_address) for m in cluster_map.members],
        table=[feed_pb2.PartitionReplicas(nodes=[index[n] for n in replicas]) for replicas in cluster_map.table],
    )
