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
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc

from client.credentials import with_token
from client.errors import translate_errors
from client.map_aware import MapAwareCalls
from client.routing import KEY_FIELD
from common.cluster_map import ClusterMap
from common.security import CLIENT_TOKEN_ENV
from common.tls import client_credentials
from protos import admin_pb2, admin_pb2_grpc, feed_pb2, feed_pb2_grpc

__all__ = [
    "FeedClient",
    "Post",
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
]

T = TypeVar("T")
CA_FILE_ENV = "FEEDRING_CA_FILE"  # the CA to trust when the cluster serves TLS
BULK_CHUNK_BYTES = 192 << 10  # per BulkFollow request: under the router's 256 KiB limit, with room


@dataclass(frozen=True)
class Post:
    id: int
    author: str
    text: str
    created_at_ms: int

    @classmethod
    def from_proto(cls, msg: feed_pb2.Post) -> Post:
        return cls(msg.id, msg.author, msg.text, msg.created_at_ms)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str  # empty on the last page


@dataclass(frozen=True)
class User:
    user: str
    follower_count: int
    following_count: int
    post_count: int
    hot: bool


@dataclass(frozen=True)
class NodeHealth:
    id: str
    address: str
    healthy: bool
    error: str
    partitions: int
    keys_by_family: dict[str, int]
    requests_served: int
    rss_bytes: int
    delivery: DeliveryStats = field(default_factory=lambda: DeliveryStats())
    replication: ReplicationStats = field(default_factory=lambda: ReplicationStats())


@dataclass(frozen=True)
class ReplicationStats:
    """What a node holds for its peers and how in sync its partitions were at its last repair."""

    hints: int = 0  # writes held for replicas that did not answer
    hints_by_target: dict[str, int] = field(default_factory=dict)
    partitions_checked: int = 0
    partitions_out_of_sync: int = 0
    last_repair_ms: int = 0  # 0: no repair pass yet
    keys_repaired: int = 0
    repairing: bool = False
    peers_down: list[str] = field(default_factory=list)  # as this node's failure detector sees them
    catching_up: bool = False  # restarted, still receiving the writes it missed (reads go elsewhere)


@dataclass(frozen=True)
class RepairProgress:
    partitions_total: int
    partitions_done: int
    out_of_sync: int
    keys_repaired: int
    unreachable: list[str]
    done: bool


@dataclass(frozen=True)
class DeliveryStats:
    """The deliveries a node drives for the posts (and deletes) of its authors."""

    records: int = 0  # outstanding, on disk
    oldest_age_s: float = 0.0
    inbox_writes: int = 0  # since the node started
    inbox_writes_per_s: float = 0.0
    retries: int = 0
    lag_p50_ms: float = 0.0  # post stored -> in every follower's inbox, last 30 s
    lag_p99_ms: float = 0.0
    lag_samples: int = 0
    fanout_busy_s: float = 0.0  # time spent writing fan-out into inboxes, since start
    fanout_paused_s: float = 0.0  # time fan-out stood back for reads
    lag_buckets: tuple[tuple[float, int], ...] = ()  # (upper bound ms, records finished within it) since start


@dataclass(frozen=True)
class HotUser:
    user: str
    state: str
    pinned: bool
    follower_count: int


@dataclass(frozen=True)
class RouterStats:
    cache_entries: int = 0
    cache_capacity: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    rss_bytes: int = 0


@dataclass(frozen=True)
class ChangeProgress:
    phase: str = ""
    change: str = ""
    keys_total: int = 0
    keys_moved: int = 0
    bytes_moved: int = 0
    partitions_moving: int = 0


@dataclass(frozen=True)
class ClusterStatus:
    epoch: int
    partitions: int
    replication_factor: int
    nodes: list[NodeHealth]
    hot_users: list[str]
    hot_registry: list[HotUser] = field(default_factory=list)
    router: RouterStats = field(default_factory=RouterStats)
    change: str = ""
    change_progress: ChangeProgress = field(default_factory=ChangeProgress)


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
        self.routed = (
            MapAwareCalls(address, self._feed, token, Path(ca_file) if ca_file else None, timeout_s, attempt_timeout_s)
            if map_aware and self._own_channel
            else None
        )

    def __enter__(self) -> FeedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.routed is not None:
            self.routed.close()
        if self._own_channel:
            self.channel.close()

    def _call(self, method: Callable[..., T], request: object) -> T:
        with translate_errors(self.address, self.timeout_s, self.tls):
            return method(request, timeout=self.timeout_s)

    def _feed_call(self, method: str, request: Any) -> Any:
        """A Feed call: to a node holding its key when map-aware, else to `address`."""
        if self.routed is None:
            return self._call(getattr(self._feed, method), request)
        with translate_errors(self.address, self.timeout_s, self.tls):
            return self.routed.call(method, getattr(request, KEY_FIELD[method]), request)

    # -- follow graph ----------------------------------------------------------------------------

    def follow(self, follower: str, followee: str) -> bool:
        """True if the edge is new; following again changes nothing."""
        reply = self._feed_call("Follow", feed_pb2.FollowRequest(follower=follower, followee=followee))
        return bool(reply.created)

    def unfollow(self, follower: str, followee: str) -> bool:
        """True if there was an edge to remove; unfollowing twice is not an error."""
        reply = self._feed_call("Unfollow", feed_pb2.UnfollowRequest(follower=follower, followee=followee))
        return bool(reply.removed)

    def bulk_follow(self, edges: list[tuple[str, str]]) -> int:
        """Loads many edges at once (no backfill of existing posts); returns how many were new.
        Sent in requests of at most BULK_CHUNK_BYTES (a router accepts up to 256 KiB each)."""
        created = 0
        for chunk in _chunks_by_size(edges, BULK_CHUNK_BYTES):
            request = admin_pb2.BulkFollowRequest(
                edges=[admin_pb2.FollowEdge(follower=a, followee=b) for a, b in chunk]
            )
            created += int(self._call(self._admin.BulkFollow, request).created)
        return created

    # -- posts -----------------------------------------------------------------------------------

    def post(self, author: str, text: str) -> Post:
        """Returns once the post is durable; followers see it shortly after (fan-out is async).
        Each post carries a fresh request_id, so a retry of it never stores it twice."""
        request = feed_pb2.PostRequest(author=author, text=text, request_id=uuid.uuid4().hex)
        return Post.from_proto(self._feed_call("Post", request))

    def delete_post(self, author: str, post_id: int) -> None:
        """Raises NotFound if `author` has no such post (the author is part of the post's key)."""
        self._feed_call("DeletePost", feed_pb2.DeletePostRequest(author=author, post_id=post_id))

    # -- reads -----------------------------------------------------------------------------------

    def timeline(self, user: str, page_size: int = 0, page_token: str = "") -> Page[Post]:
        """One page of the home timeline, newest first; page_size 0 is the cluster's default."""
        reply = self._feed_call(
            "GetTimeline", feed_pb2.GetTimelineRequest(user=user, page_size=page_size, page_token=page_token)
        )
        return Page([Post.from_proto(p) for p in reply.posts], reply.next_page_token)

    def user_posts(self, author: str, page_size: int = 0, page_token: str = "") -> Page[Post]:
        """One page of the author's own posts, newest first."""
        reply = self._feed_call(
            "GetUserPosts", feed_pb2.GetUserPostsRequest(author=author, page_size=page_size, page_token=page_token)
        )
        return Page([Post.from_proto(p) for p in reply.posts], reply.next_page_token)

    def followers(self, user: str, page_size: int = 0, page_token: str = "") -> Page[str]:
        """Who follows `user`, in lexicographic order (stable across pages)."""
        reply = self._feed_call(
            "ListFollowers", feed_pb2.ListFollowersRequest(user=user, page_size=page_size, page_token=page_token)
        )
        return Page(list(reply.users), reply.next_page_token)

    def following(self, user: str, page_size: int = 0, page_token: str = "") -> Page[str]:
        """Whom `user` follows, in lexicographic order."""
        reply = self._feed_call(
            "ListFollowing", feed_pb2.ListFollowingRequest(user=user, page_size=page_size, page_token=page_token)
        )
        return Page(list(reply.users), reply.next_page_token)

    def get_user(self, user: str) -> User:
        """Counters and hot state; NotFound for a user the cluster has never seen."""
        r = self._feed_call("GetUser", feed_pb2.GetUserRequest(user=user))
        return User(r.user, r.follower_count, r.following_count, r.post_count, r.hot)

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

    def iter_user_posts(self, author: str, page_size: int = 0) -> Iterator[Post]:
        return self._walk(lambda token: self.user_posts(author, page_size, token))

    def iter_followers(self, user: str, page_size: int = 0) -> Iterator[str]:
        return self._walk(lambda token: self.followers(user, page_size, token))

    def iter_following(self, user: str, page_size: int = 0) -> Iterator[str]:
        return self._walk(lambda token: self.following(user, page_size, token))

    # -- admin -----------------------------------------------------------------------------------

    def repair(
        self, node_id: str = "", partition: int | None = None, max_keys_per_second: int = 0
    ) -> Iterator[RepairProgress]:
        """Compares replicas and copies what differs (every partition, one node's, or one); yields
        progress until done. Nodes that could not take part are listed in `unreachable`."""
        request = admin_pb2.RepairClusterRequest(node_id=node_id, max_keys_per_second=max_keys_per_second)
        if partition is not None:
            request.partition = partition
        with translate_errors(self.address):
            for p in self._admin.Repair(request, timeout=None):
                yield RepairProgress(
                    p.partitions_total, p.partitions_done, p.out_of_sync, p.keys_repaired, list(p.unreachable), p.done
                )

    def cluster_map(self) -> ClusterMap:
        """The map the answering router routes by: epoch, nodes, partition table, pending change."""
        return ClusterMap.from_proto(self._call(self._admin.GetClusterMap, admin_pb2.GetRouterMapRequest()))

    def cluster_status(self) -> ClusterStatus:
        """Every node's health and load as the router sees it (nodes it cannot reach are unhealthy)."""
        r = self._call(self._admin.GetClusterStatus, admin_pb2.GetClusterStatusRequest())
        return ClusterStatus(
            epoch=r.epoch,
            partitions=r.partitions,
            replication_factor=r.replication_factor,
            nodes=[
                NodeHealth(
                    n.id,
                    n.address,
                    n.healthy,
                    n.error,
                    n.partitions,
                    dict(n.keys_by_family),
                    n.requests_served,
                    n.rss_bytes,
                    DeliveryStats(
                        n.delivery.records,
                        n.delivery.oldest_age_s,
                        n.delivery.inbox_writes,
                        n.delivery.inbox_writes_per_s,
                        n.delivery.retries,
                        n.delivery.lag_p50_ms,
                        n.delivery.lag_p99_ms,
                        n.delivery.lag_samples,
                        n.delivery.fanout_busy_s,
                        n.delivery.fanout_paused_s,
                        tuple(zip(n.delivery.lag_bucket_le_ms, n.delivery.lag_bucket_counts, strict=False)),
                    ),
                    ReplicationStats(
                        n.replication.hints,
                        dict(n.replication.hints_by_target),
                        n.replication.partitions_checked,
                        n.replication.partitions_out_of_sync,
                        n.replication.last_repair_ms,
                        n.replication.keys_repaired,
                        n.replication.repairing,
                        list(n.replication.peers_down),
                        n.replication.catching_up,
                    ),
                )
                for n in r.nodes
            ],
            hot_users=list(r.hot_users),
            hot_registry=[HotUser(h.user, h.state, h.pinned, h.follower_count) for h in r.hot_registry],
            router=RouterStats(
                r.router.cache_entries,
                r.router.cache_capacity,
                r.router.cache_hits,
                r.router.cache_misses,
                r.router.rss_bytes,
            ),
            change=r.change,
            change_progress=ChangeProgress(
                r.change_progress.phase,
                r.change_progress.change,
                r.change_progress.keys_total,
                r.change_progress.keys_moved,
                r.change_progress.bytes_moved,
                r.change_progress.partitions_moving,
            ),
        )


def _chunks_by_size(edges: list[tuple[str, str]], max_bytes: int) -> Iterator[list[tuple[str, str]]]:
    """Consecutive runs of edges whose encoding stays under `max_bytes` (an edge costs its two
    UTF-8 ids plus ~8 bytes of framing)."""
    chunk: list[tuple[str, str]] = []
    size = 0
    for follower, followee in edges:
        cost = len(follower.encode()) + len(followee.encode()) + 8
        if chunk and size + cost > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append((follower, followee))
        size += cost
    if chunk or not edges:
        yield chunk
