"""FeedClient: a small synchronous Python API over the Feed and Admin services.

Results are plain frozen dataclasses, not protobuf messages, so callers never depend on generated
code; every call has a deadline; failures are feedring's exceptions (client/errors.py). ``iter_*``
helpers walk every page. The cluster map comes back as common.cluster_map.ClusterMap, the same
value the router routes by, so ``primary_for_key`` and friends work on it.

By default the client is map-aware (client/map_aware.py): Feed calls go straight to a node holding
their key, one hop, and fail over to the other replicas and then to the address given; Admin calls
always go to that address (a router).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc

from client import operations as ops
from client.credentials import with_token
from client.errors import translate_errors
from client.map_aware import MapAwareCalls
from client.results import (
    ChangeProgress,
    ClusterStatus,
    DeliveryStats,
    HotUser,
    NodeHealth,
    Page,
    Post,
    Removed,
    RepairProgress,
    ReplicationStats,
    RouterStats,
    User,
    cluster_status_of,
    repair_progress_of,
)
from client.watching import RESUMABLE, Backoff, WatchCursor
from common.cluster_map import ClusterMap
from common.grpc_status import status_of
from common.security import CLIENT_TOKEN_ENV
from common.tls import client_credentials
from protos import admin_pb2, admin_pb2_grpc, feed_pb2_grpc

__all__ = [
    "FeedClient",
    "Post",
    "Removed",
    "Page",
    "User",
    "NodeHealth",
    "DeliveryStats",
    "ReplicationStats",
    "RepairProgress",
    "HotUser",
    "RouterStats",
    "ChangeProgress",
    "ClusterStatus",
    "ClusterMap",
    "CA_FILE_ENV",
]

T = TypeVar("T")
CA_FILE_ENV = "FEEDRING_CA_FILE"  # the CA to trust when the cluster serves TLS


class FeedClient:
    """Talks to a feedring cluster through `address` (a router, or a node's Feed API). Use as a
    context manager, or call close().

    `timeout_s` is the deadline of every call. `channel` replaces the channel to `address` (tests
    pass a grpc_testing channel; such a client is not map-aware); a channel passed in is the
    caller's to close. `token` goes with every call (default: $FEEDRING_TOKEN): the cluster secret
    for Admin calls, or a client token when the cluster requires one for the Feed API.
    `map_aware=False` sends every call to `address` (a router) instead of to the nodes holding the
    keys; `attempt_timeout_s` is how long one replica may take before the next is tried.
    """

    def __init__(
        self,
        address: str,
        timeout_s: float = 5.0,
        channel: grpc.Channel | None = None,
        token: str | None = None,
        ca_file: str | Path | None = None,
        map_aware: bool = True,
        attempt_timeout_s: float = 2.0,
        spread_reads: bool = True,
    ) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._own_channel = channel is None
        ca_file = ca_file if ca_file is not None else os.environ.get(CA_FILE_ENV) or None
        self.tls = bool(ca_file)
        if channel is None:
            channel = (
                grpc.secure_channel(address, client_credentials(Path(ca_file)))
                if ca_file
                else grpc.insecure_channel(address)
            )
        self.channel = channel
        token = token if token is not None else os.environ.get(CLIENT_TOKEN_ENV)
        self.calls = with_token(self.channel, token)  # the channel that sends the token: make stubs on it
        self._feed = feed_pb2_grpc.FeedStub(self.calls)
        self._admin = admin_pb2_grpc.AdminStub(self.calls)
        self._closed = False
        self._streams: set[grpc.Future] = set()  # open watch streams, cancelled by close()
        self.routed = (
            MapAwareCalls(
                address,
                self._feed,
                token,
                Path(ca_file) if ca_file else None,
                timeout_s,
                attempt_timeout_s,
                spread_reads,
            )
            if map_aware and self._own_channel
            else None
        )

    def __enter__(self) -> FeedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channels; an open watch_timeline ends (its loop stops, no error)."""
        self._closed = True
        for stream in list(self._streams):
            stream.cancel()
        if self.routed is not None:
            self.routed.close()
        if self._own_channel:
            self.channel.close()

    def _call(self, method: Callable[..., T], request: object) -> T:
        with translate_errors(self.address, self.timeout_s, self.tls):
            return method(request, timeout=self.timeout_s)

    def _run(self, op: ops.FeedCall[T]) -> T:
        """A Feed call: to a node holding its key when map-aware, else to `address`."""
        with translate_errors(self.address, self.timeout_s, self.tls):
            if self.routed is None:
                reply = getattr(self._feed, op.method)(op.request, timeout=self.timeout_s)
            else:
                reply = self.routed.call(op.method, op.key, op.request)
        return op.result(reply)

    # -- follow graph ----------------------------------------------------------------------------

    def follow(self, follower: str, followee: str) -> bool:
        """True if the edge is new; following again changes nothing."""
        return self._run(ops.follow(follower, followee))

    def unfollow(self, follower: str, followee: str) -> bool:
        """True if there was an edge to remove; unfollowing twice is not an error."""
        return self._run(ops.unfollow(follower, followee))

    def bulk_follow(self, edges: list[tuple[str, str]]) -> int:
        """Loads many edges at once (no backfill of existing posts); returns how many were new.
        Sent in requests of at most ops.BULK_CHUNK_BYTES (a router accepts up to 256 KiB each)."""
        return sum(int(self._call(self._admin.BulkFollow, r).created) for r in ops.bulk_follow_requests(edges))

    # -- posts -----------------------------------------------------------------------------------

    def post(self, author: str, text: str) -> Post:
        """Returns once the post is durable; followers see it shortly after (fan-out is async).
        Each post carries a fresh request_id, so a retry of it never stores it twice."""
        return self._run(ops.post(author, text))

    def delete_post(self, author: str, post_id: int) -> None:
        """Raises NotFound if `author` has no such post (the author is part of the post's key)."""
        self._run(ops.delete_post(author, post_id))

    # -- reads -----------------------------------------------------------------------------------

    def timeline(self, user: str, page_size: int = 0, page_token: str = "", newer_than_id: int = 0) -> Page[Post]:
        """One page of the home timeline (the user's own posts and those of everyone it follows),
        newest first; page_size 0 is the cluster's default. With `newer_than_id` (the newest post an
        app has shown), only newer posts: `gap` says more are newer than the page holds."""
        return self._run(ops.timeline(user, page_size, page_token, newer_than_id))

    def user_posts(self, author: str, page_size: int = 0, page_token: str = "") -> Page[Post]:
        """One page of the author's own posts, newest first."""
        return self._run(ops.user_posts(author, page_size, page_token))

    def followers(self, user: str, page_size: int = 0, page_token: str = "") -> Page[str]:
        """Who follows `user`, in lexicographic order (stable across pages)."""
        return self._run(ops.followers(user, page_size, page_token))

    def following(self, user: str, page_size: int = 0, page_token: str = "") -> Page[str]:
        """Whom `user` follows, in lexicographic order."""
        return self._run(ops.following(user, page_size, page_token))

    def get_user(self, user: str) -> User:
        """Counters and hot state; NotFound for a user the cluster has never seen."""
        return self._run(ops.get_user(user))

    # -- mutes and blocks ------------------------------------------------------------------------

    def mute(self, user: str, target: str) -> bool:
        """Hides `target`'s posts (past and future) from `user`'s timeline; the follow stays.
        True if it was not muted yet."""
        return self._run(ops.mute(user, target))

    def unmute(self, user: str, target: str) -> bool:
        """Shows `target`'s posts again, the past ones too. True if it was muted."""
        return self._run(ops.unmute(user, target))

    def block(self, user: str, target: str) -> bool:
        """Removes the follows both ways and refuses new ones (FailedPrecondition); neither sees the
        other's posts. True if it was not blocked yet."""
        return self._run(ops.block(user, target))

    def unblock(self, user: str, target: str) -> bool:
        """Lifts the block (the follows it removed stay removed). True if it was blocked."""
        return self._run(ops.unblock(user, target))

    def muted(self, user: str, page_size: int = 0, page_token: str = "") -> Page[str]:
        """Whom `user` mutes, in lexicographic order."""
        return self._run(ops.muted(user, page_size, page_token))

    def blocked(self, user: str, page_size: int = 0, page_token: str = "") -> Page[str]:
        """Whom `user` has blocked, in lexicographic order."""
        return self._run(ops.blocked(user, page_size, page_token))

    # -- every page ------------------------------------------------------------------------------

    @staticmethod
    def _walk(fetch: Callable[[str], Page[T]]) -> Iterator[T]:
        """Lazily: a caller that stops early does not fetch the remaining pages."""
        token = ""
        while True:
            page = fetch(token)
            yield from page.items
            if not page.next_page_token:
                return
            token = page.next_page_token

    def iter_timeline(self, user: str, page_size: int = 0) -> Iterator[Post]:
        return self._walk(lambda token: self.timeline(user, page_size, token))

    # -- live ------------------------------------------------------------------------------------

    def watch_timeline(
        self,
        user: str,
        after_id: int = 0,
        removals: bool = False,
        reconnect_for_s: float = 60.0,
        order_hold_ms: int = 0,
    ) -> Iterator[Post | Removed]:
        """New entries of the home timeline as they land, oldest first; with `after_id`, first
        those newer than it (an app's newest shown post). Endless: stop by leaving the loop. A
        broken stream (a node killed, a move) is resumed on another replica, missing nothing and
        repeating nothing (client/watching.py); after `reconnect_for_s` without any replica
        answering the last failure is raised. `removals`: also yield Removed(post_id) when an
        entry goes (a delete, an unfollow). `order_hold_ms`: posts in strict id order, each held
        that long after it was made (feed.proto's WatchTimelineRequest)."""
        cursor = WatchCursor(after_id or self._newest_id(user), order_hold_ms)
        backoff = Backoff(reconnect_for_s)
        while True:
            if self.routed is not None:
                address, stub, metadata = self.routed.stream_target(user)
            else:
                address, stub, metadata = self.address, self._feed, ()
            if self._closed:
                return
            stream = stub.WatchTimeline(cursor.request(user), metadata=metadata or None)
            self._streams.add(stream)
            try:
                for event in stream:
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
                if self.routed is not None:
                    self.routed.state.stream_failed(address)
            finally:
                self._streams.discard(stream)
                stream.cancel()
            time.sleep(pause or 0.1)

    def _newest_id(self, user: str) -> int:
        """Where a watch from now starts: the newest entry's id (1 for an empty timeline, so a
        resumed stream still sends its first entries)."""
        page = self.timeline(user, page_size=1)
        return page.items[0].id if page.items else 1

    def iter_user_posts(self, author: str, page_size: int = 0) -> Iterator[Post]:
        return self._walk(lambda token: self.user_posts(author, page_size, token))

    def iter_followers(self, user: str, page_size: int = 0) -> Iterator[str]:
        return self._walk(lambda token: self.followers(user, page_size, token))

    def iter_following(self, user: str, page_size: int = 0) -> Iterator[str]:
        return self._walk(lambda token: self.following(user, page_size, token))

    def iter_muted(self, user: str, page_size: int = 0) -> Iterator[str]:
        return self._walk(lambda token: self.muted(user, page_size, token))

    def iter_blocked(self, user: str, page_size: int = 0) -> Iterator[str]:
        return self._walk(lambda token: self.blocked(user, page_size, token))

    # -- admin -----------------------------------------------------------------------------------

    def repair(
        self, node_id: str = "", partition: int | None = None, max_keys_per_second: int = 0
    ) -> Iterator[RepairProgress]:
        """Compares replicas and copies what differs (every partition, one node's, or one); yields
        progress until done. Nodes that could not take part are listed in `unreachable`."""
        request = ops.repair_request(node_id, partition, max_keys_per_second)
        with translate_errors(self.address):
            for p in self._admin.Repair(request, timeout=None):
                yield repair_progress_of(p)

    def cluster_map(self) -> ClusterMap:
        """The map the answering router routes by: epoch, nodes, partition table, pending change."""
        return ClusterMap.from_proto(self._call(self._admin.GetClusterMap, admin_pb2.GetRouterMapRequest()))

    def cluster_status(self) -> ClusterStatus:
        """Every node's health and load as the router sees it (nodes it cannot reach are unhealthy)."""
        return cluster_status_of(self._call(self._admin.GetClusterStatus, admin_pb2.GetClusterStatusRequest()))
