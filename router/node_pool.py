"""The router's view of the storage nodes: the cluster map it routes by and one channel per node.

Every call carries the map's epoch. A node that answers "wrong owner" (WrongEpoch) makes the pool
fetch the newest map from the cluster and retry once, so a stale router heals invisibly to clients.
gRPC failures become FeedringErrors that name the node, e.g. ``node n2 (127.0.0.1:7102) is
unavailable``, and requests for other nodes are unaffected.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import grpc

from common.cluster_map import ClusterMap
from common.errors import (
    DeadlineExceeded,
    FeedringError,
    Internal,
    Unavailable,
    WrongEpoch,
    error_for_status,
)
from protos import storage_pb2, storage_pb2_grpc

__all__ = ["NodePool", "MOVED_RETRIES"]

log = logging.getLogger(__name__)

# How often a call follows "wrong owner" answers (about 5 s with backoff) before giving up.
MOVED_RETRIES = 14

# Retry only what was certainly not processed; everything we send is idempotent anyway.
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": "feedring.v1.Storage"}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.02s",
                    "maxBackoff": "0.2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)
_CHANNEL_OPTIONS = [
    ("grpc.service_config", _SERVICE_CONFIG),
    ("grpc.enable_retries", 1),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    # Fail fast on a dead node instead of waiting out the whole deadline in reconnect backoff.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class NodePool:
    def __init__(self, cluster_map: ClusterMap, timeout_s: float) -> None:
        self.map = cluster_map
        self.timeout_s = timeout_s
        self._stubs: dict[str, storage_pb2_grpc.StorageStub] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._refresh_lock = asyncio.Lock()

    # -- placement -------------------------------------------------------------------------------

    def node_for(self, key: str) -> str:
        return self.map.primary_for_key(key)

    def group_by_node(self, user_keys: Iterable[str]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = defaultdict(list)
        for key in user_keys:
            groups[self.map.primary_for_key(key)].append(key)
        return groups

    # -- calls -----------------------------------------------------------------------------------

    def stub(self, node_id: str) -> storage_pb2_grpc.StorageStub:
        return self.stub_for_address(self.map.address(node_id))

    def stub_for_address(self, address: str) -> storage_pb2_grpc.StorageStub:
        stub = self._stubs.get(address)
        if stub is None:
            channel = grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
            self._channels[address] = channel
            stub = self._stubs[address] = storage_pb2_grpc.StorageStub(channel)
        return stub

    async def call_node(
        self, node_id: str, method: str, request: Any, timeout_s: float | None = None, wait_for_ready: bool = False
    ) -> Any:
        """One RPC to one node, with the map's epoch stamped on the request."""
        if hasattr(request, "epoch"):
            request.epoch = self.map.epoch
        try:
            address = self.map.address(node_id)
        except KeyError:
            raise WrongEpoch(f"node {node_id} is not in the map at epoch {self.map.epoch}", 0) from None
        try:
            return await getattr(self.stub(node_id), method)(
                request, timeout=timeout_s or self.timeout_s, wait_for_ready=wait_for_ready
            )
        except grpc.aio.AioRpcError as exc:
            raise self._translate(exc, node_id, address) from None

    async def call(self, key: str, method: str, request: Any) -> Any:
        """One RPC to the node owning `key`. A "wrong owner" answer means our map is stale (refresh
        it and go to the new owner) or the partition is being handed over (wait a moment: the map
        that moves it is about to commit); either way the caller never sees it unless it lasts."""
        delay = 0.02
        for _ in range(MOVED_RETRIES):
            try:
                return await self.call_node(self.node_for(key), method, request)
            except WrongEpoch as exc:
                before = self.map.epoch
                await self.refresh_map(at_least=exc.epoch)
                if self.map.epoch == before:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.5)
        return await self.call_node(self.node_for(key), method, request)

    def _translate(self, exc: grpc.aio.AioRpcError, node_id: str, address: str) -> FeedringError:
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            return Unavailable(f"node {node_id} ({address}) is unavailable: {exc.details()}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return DeadlineExceeded(f"node {node_id} ({address}) did not answer within the deadline")
        err = error_for_status(code, exc.details() or "", tuple(exc.trailing_metadata() or ()))
        if isinstance(err, Internal):
            err.message = f"node {node_id} ({address}): {err.message}"
        return err

    # -- the map ---------------------------------------------------------------------------------

    def adopt(self, cluster_map: ClusterMap) -> None:
        if cluster_map.epoch > self.map.epoch:
            log.info("cluster map updated epoch=%d->%d", self.map.epoch, cluster_map.epoch)
            self.map = cluster_map

    async def refresh_map(self, at_least: int = 0) -> ClusterMap:
        """Asks every known node for its map and adopts the newest; nodes are the truth."""
        async with self._refresh_lock:
            if at_least and self.map.epoch >= at_least:
                return self.map  # already as new as the node that refused us
            addresses = {m.address for m in (*self.map.members, *self.map.leaving)}
            maps = await asyncio.gather(*(self._fetch_map(a) for a in addresses), return_exceptions=True)
            newest = max(
                (m for m in maps if isinstance(m, ClusterMap) and m.table), key=lambda m: m.epoch, default=None
            )
            if newest is not None:
                self.adopt(newest)
            return self.map

    async def _fetch_map(self, address: str) -> ClusterMap:
        msg = await self.stub_for_address(address).GetClusterMap(
            storage_pb2.GetClusterMapRequest(known_epoch=self.map.epoch), timeout=1.0
        )
        return ClusterMap.from_proto(msg)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._channels.values()), return_exceptions=True)
