"""A router's timeline reads, relayed whole to a node that coordinates them.

Every node serves the Feed API over its own store (node/feed_api.py): a GetTimeline sent to the
reader's primary is read there in process, the inbox, the reader's own salted posts and the hot
followees' posts from that node's hot-post cache merged where the data is. A router that read the
pieces itself made 1.65 node calls per read on the bench's Zipf readers (the salted reads of a hot
reader's own posts, one per node) and decoded and re-encoded every page; relayed, a read is one
call, and the node's reply bytes go back to the caller untouched.

The key's primary first, as the router's own reads go (the primary is in every write's quorum, so
an author sees their post in their timeline at once), a replica believed down or catching up last
(common/storage_client.py replicas_for). A node that does not answer within the attempt timeout, or
answers UNAVAILABLE, CANCELLED or RESOURCE_EXHAUSTED, is passed over; when none answers, or none
serves the Feed API, the router reads the pieces itself as before (feed/feed_service.py): the relay
adds a hop's worth of failover, never a failure. Any other status is the node's answer to the
caller (a bad page token, a bad name), relayed with its words.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from common import security
from common.grpc_status import status_of
from common.storage_client import StorageClient
from feed.feed_service import FeedServicer
from feed.public_server import FEED_SERVICE
from protos import feed_pb2

__all__ = ["ReadRelay", "EncodedReply"]

log = logging.getLogger(__name__)

# A node that answers with these is passed over: it is gone, stopping, or short of its peers.
_PASS_OVER = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,  # a node shutting down cancels the calls it is running
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # its call limit: another replica may have room
}
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class EncodedReply:
    """A reply already encoded by the node that answered it, served as it came (the server's
    serializer asks the reply for its bytes: common/service_handlers.py)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializeToString(self) -> bytes:  # noqa: N802 (protobuf's name)
        return self.data


class ReadRelay:
    """GetTimeline for a router's Feed API (router/server.py), relayed to nodes (GetUserPosts is not:
    a node learns a user turned hot by polling, and would miss a just-salted author's newest posts);
    `fallback` (the router's own FeedServicer) answers when no node does."""

    def __init__(
        self,
        storage: StorageClient,
        fallback: FeedServicer,
        secret: str,
        credentials: grpc.ChannelCredentials | None,
    ) -> None:
        self.storage = storage
        self.fallback = fallback
        self._metadata = security.bearer(secret) if secret else None
        self._credentials = credentials
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._calls: dict[tuple[str, str], grpc.aio.UnaryUnaryMultiCallable] = {}
        self.relayed = 0  # reads a node answered
        self.fell_back = 0  # reads no node answered: read by the router itself

    async def GetTimeline(  # noqa: N802 (gRPC's name)
        self, request: feed_pb2.GetTimelineRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        return await self._relay("GetTimeline", request.user, request, context, self.fallback.GetTimeline)

    async def _relay(
        self,
        method: str,
        key: str,
        request: Any,
        context: grpc.aio.ServicerContext,
        fallback: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
    ) -> Any:
        storage = self.storage
        data = request.SerializeToString()
        for node_id in storage.replicas_for(key, this_node_first=False):
            member = storage.map.member(node_id)
            address = member.feed_address if member is not None else ""
            if not address:
                continue
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"no node answered {method} within the deadline")
            timeout = storage.attempt_timeout_s if remaining is None else min(remaining, storage.attempt_timeout_s)
            try:
                reply: bytes = await self._call(address, method)(data, timeout=timeout, metadata=self._metadata)
            except grpc.RpcError as exc:
                status = status_of(exc)
                if status.code in _PASS_OVER:
                    log.debug("relay of %s to node %s passed over: %s", method, node_id, status.details)
                    continue
                await context.abort(status.code, status.details)  # the node's answer to the caller
            self.relayed += 1
            return EncodedReply(reply)
        self.fell_back += 1
        return await fallback(request, context)

    def _call(self, address: str, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
        call = self._calls.get((address, method))
        if call is None:
            channel = self._channels.get(address)
            if channel is None:
                channel = self._channels[address] = (
                    grpc.aio.secure_channel(address, self._credentials, options=_CHANNEL_OPTIONS)
                    if self._credentials is not None
                    else grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
                )
            # No serializers: the request goes as encoded here, the reply comes back as bytes.
            call = self._calls[(address, method)] = channel.unary_unary(f"/{FEED_SERVICE.full_name}/{method}")
        return call

    async def close(self) -> None:
        channels, self._channels, self._calls = list(self._channels.values()), {}, {}
        for channel in channels:
            await channel.close()
