"""The typed client of ``feedring.v1.Storage``: every RPC declared once, routed by the cluster map.

Routers call nodes through it for every flow (posts, follows, fan-out, hot users, reads, bulk
loads, membership), and nodes call each other through it (map catch-up, partition transfers). Each
Storage RPC is one attribute, declared below with its request and response types, so a call is
checked by mypy and "go to definition" lands on the declaration::

    reply = await storage.store_post.by_key(author, StorePostRequest(...))   # StorePostResponse
    status = await storage.get_node_status.on_node("n2", GetNodeStatusRequest(), timeout_s=2.0)

``by_key`` routes to the node owning the key's partition and follows "wrong owner" answers
(WrongEpoch): our map is stale (refresh it from the nodes, go to the new owner) or the partition is
being handed over (wait a moment: the map that moves it is about to commit). ``on_node`` and ``at``
go to one node. Every request is stamped with the map's epoch. Failures arrive as FeedringErrors
naming the node, e.g. ``node n2 (127.0.0.1:7102) is unavailable: ...``.

The wire is a ``Transport``: gRPC channels here, or the in-memory twin the unit tests route through
(tests/inmem_cluster.py), which runs real node servicers in-process.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Generic, Protocol, TypeVar

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common import security
from common.cluster_map import ClusterMap
from common.errors import DeadlineExceeded, FeedringError, Internal, ReplicaBehind, Unavailable, WrongEpoch
from common.grpc_status import LAST_RESORT_KEY, RpcStatus, error_for_status, feedring_errors, status_of
from common.peer_health import PeerHealth
from protos import cluster_pb2, storage_pb2

__all__ = [
    "StorageClient",
    "Transport",
    "GrpcTransport",
    "UnaryRpc",
    "StreamRpc",
    "MOVED_RETRIES",
    "SERVICE",
    "READS_SERVICE",
]

log = logging.getLogger(__name__)

SERVICE = "feedring.v1.Storage"
# The health service a node reports NOT_SERVING while it catches up after a restart.
READS_SERVICE = "feedring.v1.Storage.reads"
# How often a call follows "wrong owner" answers (about 5 s with backoff) before giving up.
MOVED_RETRIES = 14

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


class Transport(Protocol):
    """How requests reach a node's Storage service. Errors are raised as grpc.RpcError."""

    async def unary(
        self,
        address: str,
        method: str,
        request: Message,
        response: type[Resp],
        timeout_s: float,
        wait: bool,
        last_resort: bool = False,
    ) -> Resp:
        """`last_resort`: a read no other replica answered; one that may lack writes takes it anyway."""

    def stream(
        self, address: str, method: str, request: Message, response: type[Resp], timeout_s: float | None
    ) -> AsyncIterator[Resp]: ...

    async def serving(self, address: str, timeout_s: float, service: str = "") -> bool:
        """Whether the process at `address` answers its health check (of `service`) with SERVING."""

    async def close(self) -> None: ...


# Retry only what was certainly not processed; everything we send is idempotent anyway.
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": SERVICE}],
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


def _serialize(message: Message) -> bytes:
    return bytes(message.SerializeToString())


class GrpcTransport:
    """One aio channel per node address, created on first use (inside the running loop) and reused.
    Every call carries the cluster secret when there is one (common/security.py)."""

    def __init__(self, secret: str | None = None, credentials: grpc.ChannelCredentials | None = None) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._metadata = security.bearer(secret) if secret else None
        self._credentials = credentials  # mutual TLS (common/tls.py), or None: plaintext

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            options = _CHANNEL_OPTIONS
            channel = self._channels[address] = (
                grpc.aio.secure_channel(address, self._credentials, options=options)
                if self._credentials is not None
                else grpc.aio.insecure_channel(address, options=options)
            )
        return channel

    async def unary(
        self,
        address: str,
        method: str,
        request: Message,
        response: type[Resp],
        timeout_s: float,
        wait: bool,
        last_resort: bool = False,
    ) -> Resp:
        call = self._channel(address).unary_unary(
            f"/{SERVICE}/{method}", request_serializer=_serialize, response_deserializer=response.FromString
        )
        metadata = (*(self._metadata or ()), (LAST_RESORT_KEY, "1")) if last_resort else self._metadata
        reply: Resp = await call(request, timeout=timeout_s, wait_for_ready=wait, metadata=metadata)
        return reply

    async def stream(
        self, address: str, method: str, request: Message, response: type[Resp], timeout_s: float | None
    ) -> AsyncIterator[Resp]:
        call = self._channel(address).unary_stream(
            f"/{SERVICE}/{method}", request_serializer=_serialize, response_deserializer=response.FromString
        )
        async for item in call(request, timeout=timeout_s, metadata=self._metadata):
            yield item

    async def serving(self, address: str, timeout_s: float, service: str = "") -> bool:
        reply = await health_pb2_grpc.HealthStub(self._channel(address)).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout_s, metadata=self._metadata
        )
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(c.close() for c in channels), return_exceptions=True)


_READS_PREFERRING_THIS_NODE = frozenset({"ReadPosts", "ReadInbox", "ListEdges", "GetUserMeta"})


class UnaryRpc(Generic[Req, Resp]):
    """One unary Storage RPC, bound to a client."""

    def __init__(
        self, client: StorageClient, name: str, request: type[Req], response: type[Resp], stamp_epoch: bool = True
    ) -> None:
        self.client = client
        self.name = name
        self.response = response
        # The caller's epoch goes into `epoch`, unless the request's `epoch` means something else.
        self._stamps_epoch = stamp_epoch and "epoch" in request.DESCRIPTOR.fields_by_name
        # A node reads its own copy first; a write goes to the key's primary first, which then
        # coordinates it and is in its quorum: what a write did to a key other than the one the
        # caller named (a follow's followee side) is read back at once from the primary (CI: a node
        # coordinating an unfollow's followee side itself left the primary out of the quorum, and
        # the followers list read there still showed the unfollowed reader).
        self._read_here_first = name in _READS_PREFERRING_THIS_NODE

    async def by_key(self, key: str, request: Req) -> Resp:
        """To a replica of `key`'s partition: the first one believed up (the primary, normally),
        falling over to the next when one does not answer, and following "wrong owner" answers
        until they stop. Writes are coordinated by the replica that takes them (node/replication.py)."""
        client = self.client
        delay = 0.02
        for attempt in range(MOVED_RETRIES + 1):
            try:
                return await self._any_replica(key, request)
            except WrongEpoch as exc:
                if attempt == MOVED_RETRIES:
                    raise
                before = client.map.epoch
                await client.refresh_map(at_least=exc.epoch)
                if client.map.epoch == before:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")

    async def _any_replica(self, key: str, request: Req) -> Resp:
        replicas = self.client.replicas_for(key, self._read_here_first)
        # With other replicas to fall over to, one attempt may not take the whole deadline.
        attempt_s = self.client.attempt_timeout_s if len(replicas) > 1 else None
        failures: list[FeedringError] = []
        answered = False
        behind: list[tuple[str, ReplicaBehind]] = []  # replicas that may lack writes refused: the last resort
        for i, node_id in enumerate(replicas):
            if answered and not self.client.health.allows(self.client.address_of(node_id)):
                # A live replica already said the others are out of its reach, and this one is
                # believed down too: trying it would only spend an attempt timeout (a partition's
                # minority side answers at once instead of at the deadline).
                failures.append(Unavailable(f"node {node_id} is believed down"))
                continue
            try:
                return await self.on_node(node_id, request, timeout_s=attempt_s)
            except ReplicaBehind as exc:
                failures.append(exc)
                behind.append((node_id, exc))
            except AnsweredUnavailable as exc:
                failures.append(exc)
                answered = True
            except (Unavailable, DeadlineExceeded) as exc:
                failures.append(exc)
            except WrongEpoch as exc:
                # A replica on our map's epoch refusing a key: its partition is sealed for a move.
                # Another replica can take it (writes are coordinated from there).
                if exc.epoch != self.client.map.epoch or i == len(replicas) - 1:
                    raise
                failures.append(exc)
        # Nobody else answered: a replica a little behind beats no answer, the least behind first.
        for node_id in ReplicaBehind.least_behind_first(behind):
            try:
                return await self.on_node(node_id, request, timeout_s=attempt_s, last_resort=True)
            except FeedringError as exc:
                failures.append(exc)
        if len(failures) == 1:
            raise failures[0]
        raise Unavailable(
            f"no replica of partition {self.client.map.partition(key)} answered: "
            + "; ".join(f.message for f in failures)
        )

    async def on_node(
        self,
        node_id: str,
        request: Req,
        *,
        timeout_s: float | None = None,
        wait_for_ready: bool = False,
        last_resort: bool = False,
    ) -> Resp:
        """To one member of the map."""
        try:
            address = self.client.map.address(node_id)
        except KeyError:
            raise WrongEpoch(f"node {node_id} is not in the map at epoch {self.client.map.epoch}", 0) from None
        return await self.at(
            address,
            request,
            node_id=node_id,
            timeout_s=timeout_s,
            wait_for_ready=wait_for_ready,
            last_resort=last_resort,
        )

    async def at(
        self,
        address: str,
        request: Req,
        *,
        node_id: str = "",
        timeout_s: float | None = None,
        wait_for_ready: bool = False,
        last_resort: bool = False,
    ) -> Resp:
        """To the node at `address` (a node being added or removed may be in no routing table)."""
        client = self.client
        if self._stamps_epoch:
            setattr(request, "epoch", client.map.epoch)  # noqa: B010 (not every request type has it)
        try:
            reply = await client.transport.unary(
                address,
                self.name,
                request,
                self.response,
                timeout_s or client.timeout_s,
                wait_for_ready,
                last_resort,
            )
        except grpc.RpcError as exc:
            error = _NodeErrors(node_id, address).error(status_of(exc))
            if isinstance(error, ReplicaBehind):
                client.health.succeeded(address)  # up, catching up: reads go to the others first from now
                client.health.lagging.add(address)  # (until its health check says SERVING again)
            elif isinstance(error, AnsweredUnavailable):
                client.health.succeeded(address)  # it answered: up, only short of its peers
            elif isinstance(error, (Unavailable, DeadlineExceeded)):
                client.health.failed(address)
            raise error from exc
        client.health.succeeded(address)
        return reply


class StreamRpc(Generic[Req, Resp]):
    """One server-streaming Storage RPC, bound to a client."""

    def __init__(self, client: StorageClient, name: str, request: type[Req], response: type[Resp]) -> None:
        self.client = client
        self.name = name
        self.response = response

    async def at(
        self, address: str, request: Req, *, node_id: str = "", timeout_s: float | None = None
    ) -> AsyncIterator[Resp]:
        """The stream's messages; no deadline unless given (a transfer runs as long as it must)."""
        with feedring_errors(_NodeErrors(node_id, address)):
            async for item in self.client.transport.stream(address, self.name, request, self.response, timeout_s):
                yield item


class StorageClient:
    def __init__(
        self,
        cluster_map: ClusterMap,
        timeout_s: float,
        transport: Transport | None = None,
        attempt_timeout_s: float | None = None,
        secret: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        prefer: str = "",
    ) -> None:
        self.map = cluster_map
        # A node's own client: its own replica first (read in process), when it is up to date.
        self.prefer = prefer
        self.timeout_s = timeout_s
        # One replica's share of a call that can fall over to another (a hung node costs this much).
        self.attempt_timeout_s = attempt_timeout_s or timeout_s
        self.transport: Transport = transport if transport is not None else GrpcTransport(secret, credentials)
        self.health = PeerHealth()
        self._refresh_lock = asyncio.Lock()

        # Every Storage RPC, once, with its request and response types (protos/storage.proto).
        pb = storage_pb2
        self.store_post = UnaryRpc(self, "StorePost", pb.StorePostRequest, pb.StorePostResponse)
        self.remove_post = UnaryRpc(self, "RemovePost", pb.RemovePostRequest, pb.RemovePostResponse)
        self.read_posts = UnaryRpc(self, "ReadPosts", pb.ReadPostsRequest, pb.ReadPostsResponse)
        self.insert_inbox = UnaryRpc(self, "InsertInbox", pb.InsertInboxRequest, pb.InsertInboxResponse)
        self.remove_from_inboxes = UnaryRpc(
            self, "RemoveFromInboxes", pb.RemoveFromInboxesRequest, pb.RemoveFromInboxesResponse
        )
        self.read_inbox = UnaryRpc(self, "ReadInbox", pb.ReadInboxRequest, pb.ReadInboxResponse)
        self.add_following = UnaryRpc(self, "AddFollowing", pb.AddFollowingRequest, pb.EdgeResponse)
        self.remove_following = UnaryRpc(self, "RemoveFollowing", pb.RemoveFollowingRequest, pb.EdgeResponse)
        self.add_follower = UnaryRpc(self, "AddFollower", pb.AddFollowerRequest, pb.AddFollowerResponse)
        self.remove_follower = UnaryRpc(self, "RemoveFollower", pb.RemoveFollowerRequest, pb.EdgeResponse)
        self.add_following_many = UnaryRpc(self, "AddFollowingMany", pb.EdgeBatch, pb.EdgeBatchResponse)
        self.add_follower_many = UnaryRpc(self, "AddFollowerMany", pb.EdgeBatch, pb.EdgeBatchResponse)
        self.list_edges = UnaryRpc(self, "ListEdges", pb.ListEdgesRequest, pb.ListEdgesResponse)
        self.set_relation = UnaryRpc(self, "SetRelation", pb.SetRelationRequest, pb.SetRelationResponse)
        self.touch_reader = UnaryRpc(self, "TouchReader", pb.TouchReaderRequest, pb.TouchReaderResponse)
        self.get_user_meta = UnaryRpc(self, "GetUserMeta", pb.GetUserMetaRequest, pb.UserMeta)
        self.report_follower_count = UnaryRpc(self, "ReportFollowerCount", pb.FollowerCountReport, pb.HotStateResponse)
        self.set_hot_state = UnaryRpc(self, "SetHotState", pb.SetHotStateRequest, pb.HotStateResponse)
        self.list_hot_users = UnaryRpc(self, "ListHotUsers", pb.ListHotUsersRequest, pb.ListHotUsersResponse)
        self.set_hot_following = UnaryRpc(
            self, "SetHotFollowing", pb.SetHotFollowingRequest, pb.SetHotFollowingResponse
        )
        self.set_cluster_map = UnaryRpc(  # the request is the map itself: its epoch is the map's
            self, "SetClusterMap", cluster_pb2.ClusterMap, pb.SetClusterMapResponse, stamp_epoch=False
        )
        self.stream_partitions = StreamRpc(self, "StreamPartitions", pb.StreamPartitionsRequest, pb.PartitionChunk)
        self.pull_partitions = StreamRpc(self, "PullPartitions", pb.PullPartitionsRequest, pb.PullProgress)
        self.seal_partitions = UnaryRpc(self, "SealPartitions", pb.SealPartitionsRequest, pb.SealPartitionsResponse)
        self.drop_partitions = UnaryRpc(self, "DropPartitions", pb.DropPartitionsRequest, pb.DropPartitionsResponse)
        self.apply_writes = UnaryRpc(self, "ApplyWrites", pb.ApplyWritesRequest, pb.ApplyWritesResponse)
        self.held_deliveries = UnaryRpc(self, "HeldDeliveries", pb.HeldDeliveriesRequest, pb.HeldDeliveriesResponse)
        self.get_digests = UnaryRpc(self, "GetDigests", pb.GetDigestsRequest, pb.GetDigestsResponse)
        self.read_buckets = UnaryRpc(self, "ReadBuckets", pb.ReadBucketsRequest, pb.ReadBucketsResponse)
        self.merge_entries = UnaryRpc(self, "MergeEntries", pb.MergeEntriesRequest, pb.MergeEntriesResponse)
        self.repair = StreamRpc(self, "Repair", pb.RepairRequest, pb.RepairProgress)
        self.get_cluster_map = UnaryRpc(self, "GetClusterMap", pb.GetClusterMapRequest, cluster_pb2.ClusterMap)
        self.get_node_status = UnaryRpc(self, "GetNodeStatus", pb.GetNodeStatusRequest, pb.NodeStatus)

    # -- placement -------------------------------------------------------------------------------

    def replicas_for(self, key: str, this_node_first: bool = True) -> list[str]:
        """The key's replicas in the order to try them: those believed up first, in table order
        (sorting is stable); this node itself first among them unless `this_node_first` is False."""
        replicas = self.map.replicas(self.map.partition(key))
        if len(replicas) == 1:
            return list(replicas)
        if self.health.all_well():  # the common case, without ranking: table order, this node first
            if this_node_first and self.prefer in replicas and replicas[0] != self.prefer:
                return [self.prefer, *(n for n in replicas if n != self.prefer)]
            return list(replicas)
        # Up and caught up first (this node itself before the others); then up but catching up after
        # a restart; then the rest.
        rank = {
            n: (not self.health.allows(a), a in self.health.lagging, this_node_first and n != self.prefer)
            for n in replicas
            for a in [self.address_of(n)]
        }
        return sorted(replicas, key=lambda n: rank[n])

    def node_for(self, key: str) -> str:
        """The replica a request for `key` goes to first (the primary unless it is believed down)."""
        return self.replicas_for(key)[0]

    def group_by_node(self, user_keys: Iterable[str]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = defaultdict(list)
        for key in user_keys:
            groups[self.node_for(key)].append(key)
        return groups

    def address_of(self, node_id: str) -> str:
        try:
            return self.map.address(node_id)
        except KeyError:
            return ""

    # -- health ----------------------------------------------------------------------------------

    async def serving(self, address: str, timeout_s: float = 2.0) -> bool:
        """Whether the node at `address` is up and SERVING (its health check)."""
        try:
            return await self.transport.serving(address, timeout_s)
        except grpc.RpcError:
            return False

    async def probe(self, address: str, timeout_s: float = 1.0) -> str:
        """The failure detector's health check: "serving", "lagging" (up, but catching up on writes
        it missed: its reads health service says NOT_SERVING) or "down"."""
        try:
            if not await self.transport.serving(address, timeout_s):
                return "down"
            return "serving" if await self.transport.serving(address, timeout_s, READS_SERVICE) else "lagging"
        except grpc.RpcError:
            return "down"

    # -- the map ---------------------------------------------------------------------------------

    def adopt(self, cluster_map: ClusterMap) -> bool:
        if cluster_map.epoch <= self.map.epoch:
            return False
        log.info("cluster map updated epoch=%d->%d", self.map.epoch, cluster_map.epoch)
        self.map = cluster_map
        return True

    async def refresh_map(self, at_least: int = 0) -> ClusterMap:
        """Asks every known node for its map and adopts the newest; nodes are the truth."""
        async with self._refresh_lock:
            if at_least and self.map.epoch >= at_least:
                return self.map  # already as new as the node that refused us
            known = {m.address for m in (*self.map.members, *self.map.leaving)}
            maps = await asyncio.gather(*(self._fetch_map(a) for a in sorted(known)), return_exceptions=True)
            newest = max(
                (m for m in maps if isinstance(m, ClusterMap) and m.table), key=lambda m: m.epoch, default=None
            )
            if newest is not None:
                self.adopt(newest)
            return self.map

    async def _fetch_map(self, address: str) -> ClusterMap:
        msg = await self.get_cluster_map.at(
            address, storage_pb2.GetClusterMapRequest(known_epoch=self.map.epoch), timeout_s=1.0
        )
        return ClusterMap.from_proto(msg)

    async def close(self) -> None:
        await self.transport.close()


class AnsweredUnavailable(Unavailable):
    """A node answered UNAVAILABLE itself (e.g. its write reached too few replicas): it is up, and
    the replicas it could not reach are what is missing."""


class _NodeErrors:
    """Words a failed call to a node so the message names it."""

    def __init__(self, node_id: str, address: str) -> None:
        self.name = f"node {node_id} ({address})" if node_id else f"node at {address}"

    def error(self, status: RpcStatus) -> FeedringError:
        """The error a failed call's status stands for, naming the node."""
        return self(status) or error_for_status(status)

    def __call__(self, status: RpcStatus) -> FeedringError | None:
        if isinstance(err := error_for_status(status), ReplicaBehind):
            return ReplicaBehind(f"{self.name} answered: {status.details}", err.complete_since_ms)
        if status.code == grpc.StatusCode.UNAVAILABLE and not status.from_channel:
            return AnsweredUnavailable(f"{self.name} answered: {status.details}")
        if status.code == grpc.StatusCode.UNAVAILABLE:
            return Unavailable(f"{self.name} is unavailable: {status.details}")
        if status.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return DeadlineExceeded(f"{self.name} did not answer within the deadline")
        err = error_for_status(status)
        if isinstance(err, Internal):
            err.message = f"{self.name}: {err.message}"
        return err
