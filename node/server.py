"""Starting and stopping one storage node process: its LevelDB, its gRPC server, its loops.

The node's parts are built by node/build.py (the unit tests' twin builds the same); this module adds
what a process has: the port, TLS, health service, metrics endpoint, and the background loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from common import metrics, security, tls
from common.call_guards import CallGuards, GuardedServer
from common.config import ClusterConfig, NodeConfig
from common.errors import FeedringError
from common.heap import freeze_long_lived
from common.loop_watch import LoopWatch
from common.server_options import pending_calls_options
from common.service_handlers import add_service
from common.storage_client import READS_SERVICE, GrpcTransport
from feed.flows import FeedFlows
from feed.public_server import add_feed, listen, public_server, serving
from node import heartbeat, keys
from node.build import STORAGE_SERVICE, build_node
from node.feed_api import feed_flows
from node.hint_drain import HintDrain, Verdict
from node.metrics import node_families
from node.repair import holds_data, missed_nothing
from node.store import DiskWriteError, LevelDBStore, StoreCorruptError, StoreLockedError
from protos import storage_pb2

__all__ = ["NodeServer", "PortInUseError"]

log = logging.getLogger(__name__)

DISK_ROOM_BYTES = 64 << 20  # free space (or a quarter of a smaller disk) before writes are tried again


class PortInUseError(RuntimeError):
    pass


class NodeServer:
    """One node process: opens the store, builds the node, serves gRPC."""

    def __init__(self, config: ClusterConfig, node_id: str, address: str | None = None, feed: str = "") -> None:
        self.config = config
        self.node = self._node_config(config, node_id, address, feed)
        self.credentials = security.load_credentials(config)
        # With TLS on, only callers holding a certificate of the cluster's CA get through (mTLS).
        self.tls = tls.server_credentials(config, node_id, require_client_auth=True) if config.tls.enabled else None
        transport = GrpcTransport(
            self.credentials.secret, tls.peer_credentials(config, node_id) if config.tls.enabled else None
        )
        self.store = LevelDBStore(
            self.node.data_dir,
            node_id,
            config.storage.compression,
            config.storage.write_buffer_mb,
            config.storage.table_file_mb,
        )
        try:  # away longer than gc_grace: its old data could bring deleted data back
            heartbeat.check_not_away_too_long(
                self.store, node_id, str(self.node.data_dir), config.replication.gc_grace_s
            )
        except heartbeat.AwayTooLongError:
            self.store.close()
            raise
        self.parts = build_node(config, node_id, self.node.address, self.store, transport)
        self._background: list[asyncio.Task[None]] = []
        self.loop_watch = LoopWatch(f"node {node_id}")  # what holds the event loop, when anything does
        self.metrics = (
            metrics.MetricsEndpoint(
                self.node.metrics_listen,
                node_families(
                    lambda: self.parts.status.status(percentiles=False),
                    self.node.data_dir,
                    lambda: self.parts.data.inboxes.cached_prefixes(),
                    self.parts.store.timeline_cache,
                    lambda: self.feed_flows.cache if self.feed_flows is not None else None,
                ),
            )
            if self.node.metrics
            else None
        )
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        # The public Feed API, on its own port: client-facing TLS and limits, not the peers' mTLS.
        self.feed_health = health.aio.HealthServicer()
        self.feed_server: grpc.aio.Server | None = None
        self.feed_flows: FeedFlows | None = None

    @staticmethod
    def _node_config(config: ClusterConfig, node_id: str, address: str | None, feed: str) -> NodeConfig:
        """A node from cluster.toml, or one joining later (``--address``, ``--feed``), whose data
        directory goes beside the configured nodes' ones."""
        if any(n.id == node_id for n in config.nodes):
            node = config.node(node_id)
            if address and address != node.address:
                raise RuntimeError(f"node {node_id} is at {node.address} in {config.path}, not {address}")
            return node
        if not address:
            raise RuntimeError(f"node {node_id} is not in {config.path}: give its --address to start it as a new node")
        return NodeConfig(id=node_id, address=address, data_dir=config.nodes[0].data_dir.parent / node_id, feed=feed)

    async def _catch_up_on_writes(self, replicated: bool, started_empty: bool, patience_s: float = 60.0) -> None:
        """A (re)started replica may have missed writes while it was down: until every peer has
        answered that it holds no more hints for it, its reads health service says NOT_SERVING, so
        callers read from the other replicas (they still write here). A peer that does not answer
        may hold hints it cannot send: after `patience_s` (longer while every peer answers and the
        hints keep falling: node/hint_drain.py), a repair with the peers that do answer brings
        what they have (a write acknowledged by that peer and another reached the other) before
        reads come here, so a caller's own acknowledged write is never read missing.
        A node that started with no data while every peer had none either (a new cluster) missed
        nothing: its start-up repair pass is skipped."""
        started = time.monotonic()
        peers_had_data: dict[str, bool] = {}
        if replicated and not await self._wait_for_hints(patience_s, peers_had_data):
            try:
                async for _ in self.parts.repairer.repair(sorted(self.parts.ownership.owned)):
                    pass
            except Exception:  # serve anyway: the background repair passes try again
                log.exception("repair before serving reads failed node=%s", self.node.id)
        await self._serve_reads()
        peers = [m.id for m in self.parts.peers.map.members if m.id != self.node.id] if replicated else []
        if missed_nothing(started_empty, peers, peers_had_data):
            self.parts.repairer.skip_startup_pass()
        if replicated:
            log.info(
                "caught up on writes missed while down node=%s after=%.1fs", self.node.id, time.monotonic() - started
            )

    async def _wait_for_hints(self, patience_s: float, had_data: dict[str, bool] | None = None) -> bool:
        """Until every peer answers that it holds no hint for this node (True), or node/hint_drain.py
        says to stop waiting and repair instead (False, logged with why). `had_data`: filled with
        whether each peer held any data at its first answer."""
        drain = HintDrain(time.monotonic(), patience_s)
        told = 0.0
        while True:
            held, answered, peers = 0, 0, 0
            for member in self.parts.peers.map.members:
                if member.id == self.node.id:
                    continue
                peers += 1
                try:
                    status = await self.parts.peers.get_node_status.on_node(
                        member.id, storage_pb2.GetNodeStatusRequest(), timeout_s=1.0
                    )
                except FeedringError:
                    continue
                answered += 1
                # Not the hints kept for forwards still on their way here: writes arriving now, not
                # missed ones. While deliveries run, a catching-up node is the slowest replica, so
                # nearly every page to it left one: they held the count at ~300 for good (measured).
                replication = status.replication
                held += replication.hints_by_target.get(self.node.id, 0)
                held -= replication.in_flight_hints_by_target.get(self.node.id, 0)
                if had_data is not None:
                    had_data.setdefault(member.id, holds_data(status.keys_by_family))
            now = time.monotonic()
            verdict = drain.observe(now, answered == peers, held)
            if verdict is Verdict.DRAINED:
                return True
            if verdict is Verdict.REPAIR:
                log.warning(
                    "node %s: %s: repairing from the peers that answer before serving reads", self.node.id, drain.why
                )
                return False
            if now - drain.started >= patience_s and now - told >= 10.0:
                told = now
                log.info(
                    "node %s: waiting for hints: %d held by %d of %d peers answering",
                    self.node.id,
                    held,
                    answered,
                    peers,
                )
            await asyncio.sleep(0.5)

    async def _serve_reads(self) -> None:
        self.parts.status.catching_up = False
        self.parts.peers.health.lagging.discard(self.node.address)
        await self.health.set(READS_SERVICE, health_pb2.HealthCheckResponse.SERVING)

    async def _watch_disk(self, every_s: float = 0.5, retry_s: float = 2.0) -> None:
        """Once the disk refuses a write, this node misses every write from then on (the others
        take them): like a replica catching up, its reads health service says NOT_SERVING, so
        callers (and its own Feed API) read from the other replicas first. It still answers a read
        no other replica can. When the disk has room again, the store is reopened (LevelDB keeps a
        failed write's error until then) and the node catches up as a restarted one does: its
        peers' hints replayed here, then a repair of every partition it holds (what it coordinated
        while full has no hint anywhere), and only then reads here again."""
        while True:
            while not self.store.write_error:
                await asyncio.sleep(every_s)
            self.parts.peers.health.lagging.add(self.node.address)
            await self.health.set(READS_SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
            log.error(
                "node %s: its disk refuses writes (%s): reads go to the other replicas first; writes resume "
                "by themselves once there is room",
                self.node.id,
                self.store.write_error,
            )
            while not self._disk_writable_again():
                await asyncio.sleep(retry_s)
            started = time.monotonic()
            log.warning("node %s: its disk takes writes again: catching up on what it missed", self.node.id)
            await self.parts.data.batches.recount_keys()  # the status counts, as at a start
            self.parts.delivery.disk_writable_again()
            self.parts.status.complete_since_ms = int(time.time() * 1000)
            self.parts.status.catching_up = True
            await self._wait_for_hints(60.0)
            try:
                async for _ in self.parts.repairer.repair(sorted(self.parts.ownership.owned)):
                    pass
            except Exception:  # the background pass will try again; reads must not stay away for good
                log.exception("repair after the disk came back failed node=%s", self.node.id)
            if not self.store.write_error:
                await self._serve_reads()
                log.info(
                    "caught up after the disk came back node=%s after=%.1fs", self.node.id, time.monotonic() - started
                )

    def _disk_writable_again(self) -> bool:
        """Room on the data directory's filesystem, a file written there, the store reopened (only
        then: a disk that cannot take a file cannot reopen LevelDB either, and reads need it) and a
        probe write taken."""
        try:
            room = shutil.disk_usage(self.node.data_dir)
            if room.free < min(DISK_ROOM_BYTES, room.total // 4):
                return False
            probe = self.node.data_dir / "disk-probe.tmp"
            with open(probe, "wb") as out:
                out.write(b"\0" * (1 << 20))
                out.flush()
                os.fsync(out.fileno())
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                (self.node.data_dir / "disk-probe.tmp").unlink()
        try:
            self.store.reopen()
            self.parts.store.rebind()
            self.store.write([(keys.DISK_PROBE_KEY, str(time.time()).encode())])
        except (DiskWriteError, StoreLockedError, StoreCorruptError) as exc:
            log.warning("node %s: disk not writable yet: %s", self.node.id, exc)
            return False
        return True

    def _peer_addresses(self) -> list[str]:
        return [m.address for m in self.parts.ownership.map.members if m.id != self.node.id]

    async def start(self) -> int:
        # so_reuseport off: two nodes silently sharing a port would split a partition's traffic.
        self.server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20),
                *pending_calls_options(),  # a burst of fan-out batches must not be cancelled
            ],
        )
        # Storage calls need the cluster secret (common/security.py); health checks are open.
        guarded = GuardedServer(self.server, CallGuards(self.credentials, metrics=self.metrics is not None))
        add_service(guarded, STORAGE_SERVICE, self.parts.handlers)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, guarded)
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
        parts = self.parts
        await asyncio.to_thread(parts.load)
        started_empty = not holds_data(parts.status.keys_by_family())
        # Behind until it knows better: reads that reach it from the first moment are refused
        # (callers read another replica) unless no other answers.
        parts.status.catching_up = self.config.replication_factor > 1
        await self.health.set(READS_SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.start()
        parts.status.complete_since_ms = int(time.time() * 1000)  # every write from now reaches it
        await parts.ownership.catch_up()  # down during a change: learn the newest map first
        parts.delivery.start()  # resumes every record a crash or restart left unfinished
        replicated = self.config.replication_factor > 1 and len(parts.ownership.map.members) > 1
        parts.status.catching_up = replicated
        if replicated:
            parts.peers.health.lagging.add(self.node.address)  # its own Feed reads go to the others meanwhile
        if self.node.feed:
            await self._serve_feed()
        self._background = [
            asyncio.create_task(self._catch_up_on_writes(replicated, started_empty)),
            asyncio.create_task(parts.replayer.run()),
            asyncio.create_task(parts.repairer.run()),
            asyncio.create_task(parts.trimmer.run()),
            asyncio.create_task(parts.sweeper.run()),
            asyncio.create_task(self._watch_disk()),
            asyncio.create_task(heartbeat.run(self.store, self.config.replication.gc_grace_s)),
            asyncio.create_task(parts.peers.health.monitor(self._peer_addresses, parts.peers.probe)),
        ]
        if self.metrics is not None:
            self.metrics.start()
        self.loop_watch.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("feedring.v1.Storage", health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "node serving node=%s address=%s feed=%s epoch=%d partitions_owned=%d keys=%d deliveries_to_resume=%d "
            "hints_held=%d data_dir=%s",
            self.node.id,
            self.node.address,
            self.node.feed or "-",
            parts.ownership.map.epoch,
            len(parts.ownership.owned),
            sum(parts.data.batches.family_counts.values()),
            parts.delivery.log.count(),
            parts.hints.total,
            self.node.data_dir,
        )
        return int(port)

    async def _serve_feed(self) -> None:
        """The public Feed API, as a router serves it, over this node's own storage client."""
        self.feed_flows = feed_flows(self.config, self.parts)
        await self.feed_flows.hot.start()
        ownership = self.parts.ownership
        public = public_server(
            self.config, self.credentials, with_metrics=self.metrics is not None, map_epoch=lambda: ownership.map.epoch
        )
        add_feed(public, self.feed_flows.feed_service(), self.feed_health)
        self.feed_server = public.server
        feed_tls = (
            tls.server_credentials(self.config, self.node.id, require_client_auth=False)
            if self.config.tls.enabled
            else None
        )
        try:
            listen(self.feed_server, self.node.feed_listen, feed_tls)
        except RuntimeError as exc:
            raise PortInUseError(str(exc)) from exc
        await self.feed_server.start()
        await serving(self.feed_health)

    async def stop(self, grace: float = 2.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.feed_health.enter_graceful_shutdown()
        if self.feed_server is not None:
            await self.feed_server.stop(grace)
        if self.feed_flows is not None:
            await self.feed_flows.hot.stop()
        if self.server is not None:
            await self.server.stop(grace)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.parts.delivery.stop()  # unfinished records stay on disk for the next start
        await self.parts.replicator.drain()
        await self.parts.peers.close()
        if self.metrics is not None:
            await self.metrics.stop()
        await self.loop_watch.stop()
        self.parts.store.close()
        log.info("node stopped node=%s", self.node.id)

    async def run_until_signalled(self) -> None:
        await self.start()
        freeze_long_lived()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await self.stop()
