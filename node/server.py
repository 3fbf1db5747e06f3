"""Starting and stopping one storage node: its LevelDB, its cluster map, its gRPC server."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from common import metrics, runtime, security, tls
from common.cluster_map import ClusterMap, empty_map, initial_map
from common.config import ClusterConfig, NodeConfig
from common.errors import FeedringError
from common.hot_state import HotPolicy
from common.server_options import pending_calls_options
from common.storage_client import READS_SERVICE, StorageClient
from node import keys
from node.change_feed import ChangeFeed, ObservedStore
from node.delivery import DeliveryDriver
from node.feed_store import FeedStore
from node.hints import HintLog, HintReplayer, keys_of
from node.metrics import node_families
from node.reads_first import ReadsFirst
from node.repair import Repairer
from node.replication import Replicator
from node.service import StorageServicer
from node.store import LevelDBStore
from node.transfer import PartitionMover
from protos import storage_pb2, storage_pb2_grpc

__all__ = ["NodeServer", "PortInUseError"]

log = logging.getLogger(__name__)


class PortInUseError(RuntimeError):
    pass


class NodeServer:
    """One node process: opens the store, loads (or seeds) the cluster map, serves gRPC."""

    def __init__(self, config: ClusterConfig, node_id: str, address: str | None = None) -> None:
        self.config = config
        self.node = self._node_config(config, node_id, address)
        self.changes = ChangeFeed()
        self.store = ObservedStore(LevelDBStore(self.node.data_dir), self.changes)
        self.feed_store = FeedStore(
            self.store,
            config.partitions,
            config.limits.timeline_cap,
            HotPolicy(config.hot.follower_threshold, config.hot.cooldown_ratio),
        )
        self.map = self._load_map()
        # How this node reaches the others (replicas, deliveries, map catch-up, transfers); it routes
        # by the node's own map, and its failure detector is this node's view of its peers.
        self.credentials = security.load_credentials(config)
        # With TLS on, only callers holding a certificate of the cluster's CA get through (mTLS).
        self.tls = tls.server_credentials(config, node_id, require_client_auth=True) if config.tls.enabled else None
        self.peers = StorageClient(
            self.map,
            config.limits.rpc_timeout_s,
            attempt_timeout_s=config.replication.replica_timeout_s,
            secret=self.credentials.secret,
            credentials=tls.peer_credentials(config, node_id) if config.tls.enabled else None,
        )
        self.mover = PartitionMover(node_id, self.store, self.changes, self.peers)
        self.hints = HintLog(self.store, config.replication.max_hints_per_node)
        self.replicator = Replicator(
            node_id,
            self.peers,
            self.hints,
            apply=lambda name, request: self.servicer.apply(name, request),
            clock=self.feed_store.clock,
            write_quorum=config.replication.write_quorum,
            timeout_s=config.replication.replica_timeout_s,
            background_timeout_s=config.limits.rpc_timeout_s,
        )
        self.replayer = HintReplayer(self.hints, self.peers, self._still_a_replica)
        self.delivery = DeliveryDriver(
            node_id,
            self.feed_store,
            self.peers,
            lambda: self.servicer.owned,
            config.hot.salt_buckets,
            replicator=self.replicator,
        )
        self.repairer = Repairer(
            node_id,
            self.feed_store,
            self.peers,
            lambda: self.servicer.owned,
            config.replication.repair_interval_s,
            config.replication.repair_max_keys_per_second,
        )
        self.servicer = StorageServicer(
            node_id,
            self.feed_store,
            self.map,
            self.mover,
            self._persist_map,
            behind=self._fell_behind,
            delivery=self.delivery,
            replicator=self.replicator,
            repairer=self.repairer,
            reads_first=ReadsFirst(config.limits.fanout_share, config.limits.fanout_full_speed_after_s),
        )
        self._catching_up: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        self.metrics = (
            metrics.MetricsEndpoint(
                self.node.metrics, node_families(lambda: self.servicer.status(percentiles=False), self.node.data_dir)
            )
            if self.node.metrics
            else None
        )
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None

    @staticmethod
    def _node_config(config: ClusterConfig, node_id: str, address: str | None) -> NodeConfig:
        """A node from cluster.toml, or one joining later (``--address``), whose data directory goes
        beside the configured nodes' ones."""
        if any(n.id == node_id for n in config.nodes):
            node = config.node(node_id)
            if address and address != node.address:
                raise RuntimeError(f"node {node_id} is at {node.address} in {config.path}, not {address}")
            return node
        if not address:
            raise RuntimeError(f"node {node_id} is not in {config.path}: give its --address to start it as a new node")
        return NodeConfig(id=node_id, address=address, data_dir=config.nodes[0].data_dir.parent / node_id)

    def _still_a_replica(self, target: str, write: storage_pb2.ReplicaWrite) -> bool:
        """Whether a hint refused by `target` as "not the owner" may still be taken later."""
        cluster_map = self.peers.map
        for key in keys_of(write):
            part = cluster_map.partition(key)
            pending = cluster_map.pending_table[part] if cluster_map.pending_table else ()
            if target in cluster_map.replicas(part) or target in pending:
                return True
        return False

    async def _catch_up_on_writes(self, replicated: bool, most_s: float = 60.0) -> None:
        """A (re)started replica may have missed writes while it was down: until its peers hold no
        more hints for it, its reads health service says NOT_SERVING, so callers read from the
        other replicas (they still write here). Repair then finds anything hints did not carry."""
        started = time.monotonic()
        while replicated and time.monotonic() - started < most_s:
            held, answered = 0, 0
            for member in self.peers.map.members:
                if member.id == self.node.id:
                    continue
                try:
                    status = await self.peers.get_node_status.on_node(
                        member.id, storage_pb2.GetNodeStatusRequest(), timeout_s=1.0
                    )
                except FeedringError:
                    continue
                answered += 1
                held += status.replication.hints_by_target.get(self.node.id, 0)
            if answered and not held:
                break
            await asyncio.sleep(0.5)
        self.servicer.catching_up = False
        await self.health.set(READS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        if replicated:
            log.info(
                "caught up on writes missed while down node=%s after=%.1fs", self.node.id, time.monotonic() - started
            )

    def _peer_addresses(self) -> list[str]:
        return [m.address for m in self.peers.map.members if m.id != self.node.id]

    def _persist_map(self, cluster_map: ClusterMap) -> None:
        """Called with every map the node adopts, before it is used."""
        self.store.write([(keys.CLUSTER_MAP_KEY, cluster_map.to_bytes())])
        self.map = cluster_map
        self.peers.adopt(cluster_map)

    async def _catch_up_map(self) -> None:
        """A node that was down during a change learns the newest map from its peers."""
        peers = {m.address for m in self.map.members} | {n.address for n in self.config.nodes}
        peers.discard(self.node.address)
        for address in sorted(peers):
            try:
                msg = await self.peers.get_cluster_map.at(address, storage_pb2.GetClusterMapRequest(), timeout_s=1.0)
            except FeedringError:
                continue
            self.servicer.adopt_map(ClusterMap.from_proto(msg))

    def _fell_behind(self, epoch: int) -> None:
        """A caller's map is newer than ours: catch up from the peers (once at a time)."""
        if self._catching_up is None or self._catching_up.done():
            log.info("a caller has a newer cluster map; catching up epoch=%d caller_epoch=%d", self.map.epoch, epoch)
            self._catching_up = asyncio.create_task(self._catch_up_map())

    def _load_map(self) -> ClusterMap:
        """The live map persisted on this node is the truth; cluster.toml only seeds the first."""
        raw = self.store.get(keys.CLUSTER_MAP_KEY)
        if raw is not None:
            stored = ClusterMap.from_bytes(raw)
            if stored.partitions != self.config.partitions:
                raise RuntimeError(
                    f"{self.node.data_dir} holds {stored.partitions} partitions but "
                    f"{self.config.path} says cluster.partitions = {self.config.partitions}; "
                    "the partition count is fixed for the life of a cluster"
                )
            return stored
        if not any(n.id == self.node.id for n in self.config.nodes):
            return empty_map(self.config)  # a joining node owns nothing until a change gives it some
        seeded = initial_map(self.config)
        self.store.write([(keys.CLUSTER_MAP_KEY, seeded.to_bytes())])
        return seeded

    async def start(self) -> int:
        # so_reuseport off: two nodes silently sharing a port would split a partition's traffic.
        interceptors: list[grpc.aio.ServerInterceptor] = [security.AuthInterceptor(self.credentials)]
        if self.metrics is not None:
            interceptors.insert(0, metrics.MetricsInterceptor())  # outermost: refused calls count too
        self.server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20),
                *pending_calls_options(),  # a burst of fan-out batches must not be cancelled
                *runtime.grpc_options(),
            ],
        )
        storage_pb2_grpc.add_StorageServicer_to_server(self.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        try:
            port = (
                self.server.add_secure_port(self.node.listen, self.tls)
                if self.tls is not None
                else self.server.add_insecure_port(self.node.listen)
            )
        except RuntimeError as exc:
            raise PortInUseError(f"cannot listen on {self.node.listen}: {exc}") from exc
        if port == 0:
            raise PortInUseError(f"cannot listen on {self.node.listen}: address in use")
        await asyncio.to_thread(self.feed_store.count_keys)
        await asyncio.to_thread(self.hints.load)
        await self.server.start()
        await self._catch_up_map()
        self.delivery.start()  # resumes every record a crash or restart left unfinished
        replicated = self.config.replication_factor > 1 and len(self.map.members) > 1
        await self.health.set(READS_SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.servicer.catching_up = replicated
        self._background = [
            asyncio.create_task(self._catch_up_on_writes(replicated)),
            asyncio.create_task(self.replayer.run()),
            asyncio.create_task(self.repairer.run()),
            asyncio.create_task(self.peers.health.monitor(self._peer_addresses, self.peers.probe)),
        ]
        if self.metrics is not None:
            self.metrics.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("feedring.v1.Storage", health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "node serving node=%s address=%s epoch=%d partitions_owned=%d keys=%d deliveries_to_resume=%d "
            "hints_held=%d data_dir=%s",
            self.node.id,
            self.node.address,
            self.map.epoch,
            len(self.servicer.owned),
            sum(self.feed_store.family_counts.values()),
            self.delivery.log.count(),
            self.hints.total,
            self.node.data_dir,
        )
        return int(port)

    async def stop(self, grace: float = 2.0) -> None:
        await self.health.enter_graceful_shutdown()
        if self.server is not None:
            await self.server.stop(grace)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.delivery.stop()  # unfinished records stay on disk for the next start
        await self.replicator.drain()
        await self.peers.close()
        if self.metrics is not None:
            await self.metrics.stop()
        self.store.close()
        log.info("node stopped node=%s", self.node.id)

    async def run_until_signalled(self) -> None:
        await self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await self.stop()
