"""GetNodeStatus: what `feedring status` shows of a node, and what its metrics are built from."""

from __future__ import annotations

import time

import grpc

from common.grpc_status import grpc_errors
from common.process_stats import rss_bytes
from node import keys
from node.batch import Batches
from node.delivery import DeliveryDriver
from node.inboxes import Inboxes
from node.ownership import Ownership
from node.reads_first import ReadsFirst
from node.repair import Repairer
from node.replication import Replicator
from protos import storage_pb2

__all__ = ["StatusServicer"]


class StatusServicer:
    def __init__(
        self,
        ownership: Ownership,
        batches: Batches,
        delivery: DeliveryDriver,
        reads_first: ReadsFirst,
        replicator: Replicator,
        repairer: Repairer,
        inboxes: Inboxes,
    ) -> None:
        self.ownership = ownership
        self.batches = batches
        self.delivery = delivery
        self.reads_first = reads_first
        self.replicator = replicator
        self.repairer = repairer
        self.inboxes = inboxes
        self.catching_up = False  # restarted and not yet sent every hint its peers held for it
        self.complete_since_ms = 0  # since when every write sent here was applied (its start, its disk's return)

    def behind_since_ms(self, disk_refuses: bool) -> int:
        """0 if this replica has every acknowledged write it was sent; else the wall time (ms) before
        which it may lack some: since it was complete, or now while its disk refuses writes."""
        now_ms = int(time.time() * 1000)
        if disk_refuses:
            return now_ms
        return (self.complete_since_ms or now_ms) if self.catching_up else 0

    @grpc_errors
    async def GetNodeStatus(
        self, request: storage_pb2.GetNodeStatusRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.NodeStatus:
        await self.delivery.oldest_age_settled()  # an ask that starts a look waits for its answer
        return self.status()

    def keys_by_family(self) -> dict[str, int]:
        # Counts are kept as keys come and go; one can dip below zero for a moment while a
        # transfer's raw copy is not yet recounted.
        return {
            keys.FAMILY_NAMES.get(family, repr(family)): max(count, 0)
            for family, count in sorted(self.batches.family_counts.items())
        }

    def status(self, percentiles: bool = True) -> storage_pb2.NodeStatus:
        """`percentiles` False: without the lag percentiles, which cost a sort (the metrics snapshot)."""
        ownership = self.ownership
        return storage_pb2.NodeStatus(
            node_id=ownership.node_id,
            epoch=ownership.map.epoch,
            partitions_owned=len(ownership.owned),
            keys_by_family=self.keys_by_family(),
            requests_served=ownership.requests_served,
            rss_bytes=rss_bytes(),
            delivery=self._delivery(percentiles),
            replication=self._replication(),
            disk_error=getattr(getattr(self.batches.store, "inner", None), "write_error", ""),
            leveldb_cache_bytes=_cache_bytes(self.batches.store),
        )

    def _delivery(self, percentiles: bool) -> storage_pb2.DeliveryStats:
        stats = self.delivery.stats(percentiles)
        stats.fanout_busy_s = self.reads_first.background_s
        stats.fanout_paused_s = self.reads_first.paused_s
        stats.inactive_readers = len(self.inboxes.inactive)
        stats.inbox_entries_skipped = self.inboxes.skipped
        return stats

    def _replication(self) -> storage_pb2.ReplicationStats:
        stats = storage_pb2.ReplicationStats()
        stats.CopyFrom(self.repairer.stats)
        stats.catching_up = self.catching_up
        replicator = self.replicator
        hints = replicator.hints
        stats.hints = hints.total
        stats.hints_by_target.update(hints.counts)
        stats.in_flight_hints_by_target.update(hints.in_flight_by_target())
        stats.hints_replayed = hints.replayed
        stats.hints_expired = hints.expired
        stats.quorum_failures = replicator.quorum_failures
        stats.forwards_in_flight = replicator.forwards_in_flight
        stats.writes_restamped = replicator.restamped
        stats.tombstones_collected = self.repairer.data.tombstones_collected
        stats.clock_offset_ms.update(replicator.clock_skew.offsets_ms())
        stats.max_clock_skew_ms = replicator.clock_skew.max_skew_ms
        suspected = set(replicator.peers.health.suspected())
        stats.peers_down.extend(m.id for m in self.ownership.map.members if m.address in suspected)
        return stats


def _cache_bytes(store: object) -> int:
    """LevelDB's own memory (0 for the in-memory twin's store)."""
    inner = getattr(store, "inner", store)
    cache_bytes = getattr(inner, "cache_bytes", None)
    return int(cache_bytes()) if cache_bytes is not None else 0
