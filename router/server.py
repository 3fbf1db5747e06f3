"""Starting and stopping one router worker: its storage client, its flows, and the public services."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from grpc_health.v1 import health

from common import metrics, security, tls
from common.cluster_map import initial_map
from common.config import ClusterConfig
from common.heap import freeze_long_lived
from common.loop_watch import LoopWatch
from common.storage_client import StorageClient
from feed.post_ids import PostIdGenerator, generator_id
from feed.public_server import add_feed, listen, public_server, serving
from protos import admin_pb2, admin_pb2_grpc
from router.flows import RouterFlows
from router.metrics import router_families
from router.read_relay import ReadRelay

__all__ = ["RouterServer"]

log = logging.getLogger(__name__)

MAP_REFRESH_S = 1.0
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["Admin"]


class RouterServer:
    def __init__(self, config: ClusterConfig, router_id: int, worker: int = 0, reuse_port: bool = False) -> None:
        self.config = config
        self.router = config.router(router_id)
        self.worker = worker
        self.reuse_port = reuse_port
        self.credentials = security.load_credentials(config)
        # TLS: clients need only trust the CA; this router presents its own certificate to nodes.
        name = tls.router_name(router_id)
        self.tls = tls.server_credentials(config, name, require_client_auth=False) if config.tls.enabled else None
        self.peer_tls = tls.peer_credentials(config, name) if config.tls.enabled else None
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self.metrics: metrics.MetricsEndpoint | None = None
        self.loop_watch = LoopWatch(f"router {self.router.id}/{self.worker}")

    async def start(self) -> int:
        # Channels belong to the running loop: everything gRPC is created here, not in __init__.
        # A write's attempt covers its coordinator waiting on the other replicas.
        self.storage = StorageClient(
            initial_map(self.config),
            self.config.limits.rpc_timeout_s,
            attempt_timeout_s=2 * self.config.replication.replica_timeout_s,
            secret=self.credentials.secret,
            credentials=self.peer_tls,
        )
        await self.storage.refresh_map()
        self.flows = RouterFlows.build(
            self.config, self.storage, PostIdGenerator(generator_id(self.router.id, self.worker))
        )
        await self.flows.hot.start()
        self.feed_service = self.flows.feed_service()
        self.admin_service = self.flows.admin_service()

        metrics_address = self.router.metrics_listen(self.worker)
        storage = self.storage
        public = public_server(
            self.config,
            self.credentials,
            with_metrics=bool(metrics_address),
            reuse_port=self.reuse_port,
            map_epoch=lambda: storage.map.epoch,
        )
        # Timeline and user-post reads go whole to a node holding the key, which reads them in process.
        self.relay = ReadRelay(self.storage, self.feed_service, self.credentials.secret, self.peer_tls)
        add_feed(public, self.feed_service, self.health, ADMIN_SERVICE.full_name, served_first_by=self.relay)
        admin_pb2_grpc.add_AdminServicer_to_server(self.admin_service, public)
        self.server = public.server
        port = listen(self.server, self.router.listen, self.tls)
        await self.server.start()
        await serving(self.health, ADMIN_SERVICE.full_name)
        self._refresher = asyncio.create_task(self._refresh_map_forever())
        # Health-check the nodes, so reads go past a dead one without first waiting for it.
        self._monitor = asyncio.create_task(
            self.storage.health.monitor(
                lambda: [m.address for m in self.storage.map.members],
                self.storage.probe,
            )
        )
        if metrics_address:
            self.metrics = metrics.MetricsEndpoint(metrics_address, router_families(self.flows, self.relay))
            self.metrics.start()
        self.loop_watch.start()
        log.info(
            "router serving router=%d worker=%d address=%s epoch=%d nodes=%d",
            self.router.id,
            self.worker,
            self.router.address,
            self.storage.map.epoch,
            len(self.storage.map.members),
        )
        return int(port)

    async def _refresh_map_forever(self) -> None:
        while True:
            await asyncio.sleep(MAP_REFRESH_S)
            try:
                await self.storage.refresh_map()
            except Exception:  # a refresh failing must never stop the next one
                log.exception("cluster map refresh failed")

    async def stop(self, grace: float = 2.0) -> None:
        await self.health.enter_graceful_shutdown()
        if self._refresher:
            self._refresher.cancel()
        if self._monitor:
            self._monitor.cancel()
        if self.metrics is not None:
            await self.metrics.stop()
        if self.server is not None:
            await self.server.stop(grace)
        await self.flows.hot.stop()
        await self.relay.close()
        await self.storage.close()
        await self.loop_watch.stop()
        log.info("router stopped router=%d worker=%d", self.router.id, self.worker)

    async def run_until_signalled(self) -> None:
        await self.start()
        freeze_long_lived()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await self.stop()
