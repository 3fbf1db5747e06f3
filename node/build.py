"""One node's parts, wired once: the node process (node/server.py) and the in-memory twin of the
unit tests (tests/inmem_cluster.py) both build a node here, over their own store and transport.

The parts, from the bottom up (each is given only the parts below it):

    store (ObservedStore) -> data (FeedStore: posts, inboxes, graph, registry, deliveries)
    ownership (the map; what this node holds, takes writes for, has sealed)
    local writes -> replicator (+ hints) -> delivery driver, repairer, partition mover, inbox trimmer,
    reader sweeper
    servicers: data, membership, repair, status -> ``handlers``, the feedring.v1.Storage service
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.config import ClusterConfig
from common.hot_state import HotPolicy
from common.local_transport import LocalFirstTransport
from common.service_handlers import handlers_of
from common.storage_client import StorageClient, Transport
from node import store_format
from node.change_feed import ChangeFeed, ObservedStore
from node.clock_skew import ClockSkew
from node.data_service import DataServicer
from node.delivery import DeliveryDriver
from node.delivery_log import RecordsWritten
from node.feed_store import FeedStore
from node.hints import HintLog, HintReplayer
from node.inbox_trim import InboxTrimmer
from node.local_writes import LocalWrites
from node.membership_service import MembershipServicer
from node.ownership import Ownership, load_map
from node.readers import ReaderSweeper
from node.reads_first import ReadsFirst
from node.repair import Repairer
from node.repair_service import RepairServicer
from node.replication import Replicator
from node.status_service import StatusServicer
from node.store import Store
from node.timeline_cache import TimelineCache
from node.tombstones import Tombstones
from node.transfer import PartitionMover
from protos import storage_pb2

__all__ = ["Node", "build_node", "STORAGE_SERVICE"]

STORAGE_SERVICE = storage_pb2.DESCRIPTOR.services_by_name["Storage"]


@dataclass
class Node:
    node_id: str
    store: ObservedStore
    data: FeedStore
    ownership: Ownership
    peers: StorageClient  # how this node reaches the others (and itself, in process), by its own map
    hints: HintLog
    replicator: Replicator
    replayer: HintReplayer
    delivery: DeliveryDriver
    repairer: Repairer
    mover: PartitionMover
    reads_first: ReadsFirst
    records_written: RecordsWritten
    trimmer: InboxTrimmer
    sweeper: ReaderSweeper  # who went away (node/readers.py)
    status: StatusServicer
    handlers: dict[str, Any]  # feedring.v1.Storage: method name -> handler(request, context)

    def load(self) -> None:
        """Reads what a previous run left: keys per family, hints held, who has mutes, blocks or a
        hot registry entry (a scan each: run it in a thread, before serving)."""
        self.data.batches.count_keys()
        self.hints.load()
        self.data.sparse.load(self.store, self.data.partitions)


def build_node(
    config: ClusterConfig,
    node_id: str,
    address: str,
    store: Store,
    transport: Transport,
    *,
    delivery_page: int = 500,
) -> Node:
    """A node at `address` over `store`, reaching its peers through `transport` and itself in
    process. Its map is the one stored in `store` (or seeded from `config`). Nothing runs yet: the
    caller starts the loops it wants."""
    observed = (
        store
        if isinstance(store, ObservedStore)
        else ObservedStore(store, ChangeFeed(), TimelineCache(config.storage.timeline_cache))
    )
    store_format.ensure_current(observed, config.partitions)  # an older layout is migrated first
    data = FeedStore(
        observed,
        config.partitions,
        config.limits.timeline_cap,
        HotPolicy(config.hot.follower_threshold, config.hot.cooldown_ratio),
        inactive_after_ms=int(config.fanout.inactive_after_s * 1000),
        sparse=observed.sparse,
    )
    cluster_map = load_map(observed, config, node_id)
    local_first = LocalFirstTransport(transport)
    peers = StorageClient(
        cluster_map,
        config.limits.rpc_timeout_s,
        local_first,
        attempt_timeout_s=config.replication.replica_timeout_s,
        prefer=node_id,
    )
    ownership = Ownership(
        node_id,
        cluster_map,
        observed,
        peers,
        config.partitions,
        seed_addresses=[n.address for n in config.nodes if n.id != node_id],
    )
    records_written = RecordsWritten()
    reads_first = ReadsFirst(config.limits.fanout_share, config.limits.fanout_full_speed_after_s)
    local = LocalWrites(data, ownership, reads_first, records_written)
    hints = HintLog(observed, config.replication.max_hints_per_node, config.replication.max_hint_age_s)
    replicator = Replicator(
        node_id,
        peers,
        hints,
        local,
        clock=data.clock,
        write_quorum=config.replication.write_quorum,
        timeout_s=config.replication.replica_timeout_s,
        background_timeout_s=config.limits.rpc_timeout_s,
        clock_skew=ClockSkew(round(config.replication.max_clock_skew_s * 1000)),
    )
    delivery = DeliveryDriver(
        node_id,
        data,
        peers,
        ownership,
        replicator,
        records_written,
        config.hot.salt_buckets,
        page=delivery_page,
        catching_up=lambda: status.catching_up,
    )
    repairer = Repairer(
        node_id,
        data,
        peers,
        ownership,
        config.replication.repair_interval_s,
        config.replication.repair_max_keys_per_second,
        reads_first,
        Tombstones(config.replication.gc_grace_s),
    )
    mover = PartitionMover(node_id, observed, peers, ownership)
    status = StatusServicer(ownership, data.batches, delivery, reads_first, replicator, repairer, data.inboxes)
    handlers = handlers_of(
        STORAGE_SERVICE,
        DataServicer(
            data,
            ownership,
            local,
            replicator,
            reads_first,
            behind=lambda: status.behind_since_ms(bool(getattr(observed.inner, "write_error", ""))),
            timeline_cache=observed.timeline_cache,
        ),
        MembershipServicer(ownership, mover, data.batches, records_written),
        RepairServicer(data, ownership, repairer, records_written),
        status,
    )
    local_first.serve_locally(address, handlers)
    return Node(
        node_id=node_id,
        store=observed,
        data=data,
        ownership=ownership,
        peers=peers,
        hints=hints,
        replicator=replicator,
        replayer=HintReplayer(hints, peers),
        delivery=delivery,
        repairer=repairer,
        mover=mover,
        reads_first=reads_first,
        records_written=records_written,
        trimmer=InboxTrimmer(data.inboxes, reads_first),
        sweeper=ReaderSweeper(data.readers, lambda: ownership.owned, reads_first, config.fanout.sweep_every_s),
        status=status,
        handlers=handlers,
    )
