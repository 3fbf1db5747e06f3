"""AsyncFeedClient: FeedClient for asyncio programs (grpc.aio), so an aiohttp or FastAPI app never
blocks its event loop or wraps calls in threads.

The same methods with the same arguments, results (client/results.py), errors (client/errors.py) and
map-awareness (client/attempts.py: one hop to a replica of the key, fail-over, read-your-writes);
each method is a coroutine, and the ``iter_*`` walks and ``repair`` are async iterators::

    async with AsyncFeedClient("127.0.0.1:7000") as feed:
        await feed.post("alice", "hello")
        async for post in feed.iter_timeline("bob"):
            ...

Create it inside a running event loop (its channels belong to that loop).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc

from client import operations as ops
from client.attempts import MapState
from client.errors import translate_errors
from client.feed_client import CA_FILE_ENV
from client.results import (
    ClusterStatus,
    Page,
    Post,
    Removed,
    RepairProgress,
    User,
    cluster_status_of,
    repair_progress_of,
)
from client.watching import RESUMABLE, Backoff, WatchCursor
from common.cluster_map import ClusterMap
from common.grpc_status import status_of
from common.security import CLIENT_TOKEN_ENV
from common.tls import client_credentials
from protos import admin_pb2, admin_pb2_grpc, feed_pb2, feed_pb2_grpc

__all__ = ["AsyncFeedClient"]

T = TypeVar("T")


class AsyncFeedClient:
    """Talks to a feedring cluster through `address` (a router, or a node's Feed API); the
    arguments mean what they mean for FeedClient. Use ``async with``, or ``await close()``."""

    def __init__(
        self,
        address: str,
        timeout_s: float = 5.0,
        token: str | None = None,
        ca_file: str | Path | None = None,
        map_aware: bool = True,
        attempt_timeout_s: float = 2.0,
    ) -> None:
        self.address = address
        self.timeout_s = timeout_s
        ca_file = ca_file if ca_file is not None else os.environ.get(CA_FILE_ENV) or None
        self._ca_file = Path(ca_file) if ca_file else None
        self.tls = self._ca_file is not None
        token = token if token is not None else os.environ.get(CLIENT_TOKEN_ENV)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._closed = False
        self._feeds: dict[str, feed_pb2_grpc.FeedStub] = {}
        self._admin = admin_pb2_grpc.AdminStub(self._channel(address))
        self.state = MapState(address, timeout_s, attempt_timeout_s, self._metadata) if map_aware else None

    async def __aenter__(self) -> AsyncFeedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the channels; an open watch_timeline ends (its loop stops, no error)."""
        self._closed = True
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._feeds.clear()

    # -- sending ---------------------------------------------------------------------------------

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = (
                grpc.aio.secure_channel(address, client_credentials(self._ca_file))
                if self._ca_file
                else grpc.aio.insecure_channel(address)
            )
        return channel

    def _feed(self, address: str) -> feed_pb2_grpc.FeedStub:
        stub = self._feeds.get(address)
        if stub is None:
            stub = self._feeds[address] = feed_pb2_grpc.FeedStub(self._channel(address))
        return stub

    async def _call(self, method: Callable[..., Awaitable[T]], request: object) -> T:
        with translate_errors(self.address, self.timeout_s, self.tls):
            return await method(request, timeout=self.timeout_s, metadata=self._metadata or None)

    async def _run(self, op: ops.FeedCall[T]) -> T:
        """A Feed call: to a node holding its key when map-aware, else to `address`."""
        with translate_errors(self.address, self.timeout_s, self.tls):
            if self.state is None:
                method = getattr(self._feed(self.address), op.method)
                reply = await method(op.request, timeout=self.timeout_s, metadata=self._metadata or None)
            else:
                reply = await self._routed(op)
        return op.result(reply)

    async def _routed(self, op: ops.FeedCall[Any]) -> Any:
        state = self.state
        assert state is not None
        if state.stale:
            await self.refresh_map()
        attempts = state.attempts(op.method, op.key, op.request)
        for address, timeout, metadata in attempts:
            call = getattr(self._feed(address), op.method)(op.request, timeout=timeout, metadata=metadata or None)
            try:
                reply = await call
            except grpc.RpcError as exc:
                if attempts.failed(address, exc):
                    return feed_pb2.DeletePostResponse()  # the unanswered attempt deleted it
                continue
            attempts.answered(address, await call.trailing_metadata())
            return reply
        raise AssertionError("unreachable: the last target answers or raises")

    async def refresh_map(self) -> None:
        """Asks the entry address, then the known nodes, for the routing map; keeps the newest seen."""
        state = self.state
        if state is None:
            return
        for address in state.map_sources():
            try:
                msg = await self._feed(address).GetRoutingMap(
                    feed_pb2.GetRoutingMapRequest(), timeout=state.attempt_timeout_s, metadata=self._metadata or None
                )
            except grpc.RpcError:
                continue
            state.fetched(msg)
            return
        state.fetched(None)

    # -- follow graph ----------------------------------------------------------------------------

    async def follow(self, follower: str, followee: str) -> bool:
        """True if the edge is new; following again changes nothing."""
        return await self._run(ops.follow(follower, followee))

    async def unfollow(self, follower: str, followee: str) -> bool:
        """True if there was an edge to remove; unfollowing twice is not an error."""
        return await self._run(ops.unfollow(follower, followee))

    async def bulk_follow(self, edges: list[tuple[str, str]]) -> int:
        """Loads many edges at once (no backfill of existing posts); returns how many were new."""
        created = 0
        for request in ops.bulk_follow_requests(edges):
            created += int((await self._call(self._admin.BulkFollow, request)).created)
        return created

    # -- posts -----------------------------------------------------------------------------------

    async def post(self, author: str, text: str) -> Post:
        """Returns once the post is durable; followers see it shortly after (fan-out is async)."""
        return await self._run(ops.post(author, text))

    async def delete_post(self, author: str, post_id: int) -> None:
        """Raises NotFound if `author` has no such post."""
        await self._run(ops.delete_post(author, post_id))

    # -- reads -----------------------------------------------------------------------------------

    async def timeline(self, user: str, page_size: int = 0, page_token: str = "", newer_than_id: int = 0) -> Page[Post]:
        """One page of the home timeline (own posts and followees'), newest first; page_size 0 is
        the cluster's default. With `newer_than_id`, only newer posts (`gap`: more than a page)."""
        return await self._run(ops.timeline(user, page_size, page_token, newer_than_id))

    async def user_posts(self, author: str, page_size: int = 0, page_token: str = "") -> Page[Post]:
        return await self._run(ops.user_posts(author, page_size, page_token))

    async def followers(self, user: str, page_size: int = 0, page_token: str = "") -> Page[str]:
        return await self._run(ops.followers(user, page_size, page_token))

    async def following(self, user: str, page_size: int = 0, page_token: str = "") -> Page[str]:
        return await self._run(ops.following(user, page_size, page_token))

    async def get_user(self, user: str) -> User:
        """Counters and hot state; NotFound for a user the cluster has never seen."""
        return await self._run(ops.get_user(user))

    # -- mutes and blocks ------------------------------------------------------------------------

    async def mute(self, user: str, target: str) -> bool:
        """Hides `target`'s posts (past and future) from `user`'s timeline; the follow stays.
        True if it was not muted yet."""
        return await self._run(ops.mute(user, target))

    async def unmute(self, user: str, target: str) -> bool:
        """Shows `target`'s posts again, the past ones too. True if it was muted."""
        return await self._run(ops.unmute(user, target))

    async def block(self, user: str, target: str) -> bool:
        """Removes the follows both ways and refuses new ones (FailedPrecondition); neither sees the
        other's posts. True if it was not blocked yet."""
        return await self._run(ops.block(user, target))

    async def unblock(self, user: str, target: str) -> bool:
        """Lifts the block (the follows it removed stay removed). True if it was blocked."""
        return await self._run(ops.unblock(user, target))

    async def muted(self, user: str, page_size: int = 0, page_token: str = "") -> Page[str]:
        """Whom `user` mutes, in lexicographic order."""
        return await self._run(ops.muted(user, page_size, page_token))

    async def blocked(self, user: str, page_size: int = 0, page_token: str = "") -> Page[str]:
        """Whom `user` has blocked, in lexicographic order."""
        return await self._run(ops.blocked(user, page_size, page_token))

    # -- every page ------------------------------------------------------------------------------

    @staticmethod
    async def _walk(fetch: Callable[[str], Awaitable[Page[T]]]) -> AsyncIterator[T]:
        """Lazily: a caller that stops early does not fetch the remaining pages."""
        token = ""
        while True:
            page = await fetch(token)
            for item in page.items:
                yield item
            if not page.next_page_token:
                return
            token = page.next_page_token

    def iter_timeline(self, user: str, page_size: int = 0) -> AsyncIterator[Post]:
        return self._walk(lambda token: self.timeline(user, page_size, token))

    # -- live ------------------------------------------------------------------------------------

    async def watch_timeline(
        self,
        user: str,
        after_id: int = 0,
        removals: bool = False,
        reconnect_for_s: float = 60.0,
        order_hold_ms: int = 0,
    ) -> AsyncIterator[Post | Removed]:
        """As FeedClient.watch_timeline, as an async iterator (``async for post in ...``)."""
        if not after_id:
            page = await self.timeline(user, page_size=1)
            after_id = page.items[0].id if page.items else 1
        cursor = WatchCursor(after_id, order_hold_ms)
        backoff = Backoff(reconnect_for_s)
        while not self._closed:
            if self.state is not None:
                if self.state.stale:
                    await self.refresh_map()
                address, metadata = self.state.stream_target(user)
            else:
                address, metadata = self.address, self._metadata
            stream = self._feed(address).WatchTimeline(cursor.request(user), metadata=metadata or None)
            try:
                async for event in stream:
                    backoff.succeeded()
                    out = cursor.take(event)
                    if out is not None and (removals or isinstance(out, Post)):
                        yield out
                pause = backoff.failed()  # the server ended it (shutting down): resume
            except grpc.RpcError as exc:
                if self._closed:
                    return
                pause = backoff.failed() if status_of(exc).code in RESUMABLE else None
                if pause is None:
                    with translate_errors(address, None, self.tls):
                        raise
                if self.state is not None:
                    self.state.stream_failed(address)
            finally:
                stream.cancel()
            await asyncio.sleep(pause or 0.1)

    def iter_user_posts(self, author: str, page_size: int = 0) -> AsyncIterator[Post]:
        return self._walk(lambda token: self.user_posts(author, page_size, token))

    def iter_followers(self, user: str, page_size: int = 0) -> AsyncIterator[str]:
        return self._walk(lambda token: self.followers(user, page_size, token))

    def iter_following(self, user: str, page_size: int = 0) -> AsyncIterator[str]:
        return self._walk(lambda token: self.following(user, page_size, token))

    def iter_muted(self, user: str, page_size: int = 0) -> AsyncIterator[str]:
        return self._walk(lambda token: self.muted(user, page_size, token))

    def iter_blocked(self, user: str, page_size: int = 0) -> AsyncIterator[str]:
        return self._walk(lambda token: self.blocked(user, page_size, token))

    # -- admin -----------------------------------------------------------------------------------

    async def repair(
        self, node_id: str = "", partition: int | None = None, max_keys_per_second: int = 0
    ) -> AsyncIterator[RepairProgress]:
        """Compares replicas and copies what differs; yields progress until done."""
        request = ops.repair_request(node_id, partition, max_keys_per_second)
        with translate_errors(self.address):
            async for p in self._admin.Repair(request, timeout=None, metadata=self._metadata or None):
                yield repair_progress_of(p)

    async def cluster_map(self) -> ClusterMap:
        """The map the answering router routes by: epoch, nodes, partition table, pending change."""
        return ClusterMap.from_proto(await self._call(self._admin.GetClusterMap, admin_pb2.GetRouterMapRequest()))

    async def cluster_status(self) -> ClusterStatus:
        """Every node's health and load as the router sees it (nodes it cannot reach are unhealthy)."""
        msg = await self._call(self._admin.GetClusterStatus, admin_pb2.GetClusterStatusRequest())
        return cluster_status_of(msg)
