"""What the Feed and Admin APIs answer, as plain frozen dataclasses (callers never depend on generated
code), and the conversions from the protobuf replies. Shared by FeedClient and AsyncFeedClient."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from protos import admin_pb2, feed_pb2

__all__ = [
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
    "post_page",
    "user_page",
    "user_of",
    "repair_progress_of",
    "cluster_status_of",
]

T = TypeVar("T")


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
class Removed:
    """A watched timeline lost an entry: the post was deleted, or its author unfollowed."""

    post_id: int


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str  # empty on the last page
    gap: bool = False  # a timeline read with newer_than_id: more is newer than this page holds


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
    disk_error: str = ""  # the disk refused a write: the node serves reads, not writes
    leveldb_cache_bytes: int = 0  # LevelDB's block cache and memtables (part of rss_bytes)


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
    clock_offset_ms: dict[str, int] = field(default_factory=dict)  # peer id -> its wall clock minus this node's
    max_clock_skew_ms: int = 0  # replication.max_clock_skew
    writes_restamped: int = 0  # versioned writes stamped again above a replica's newer version
    tombstones_collected: int = 0  # post tombstones and dead edges collected since start (gc_grace)
    forwards_in_flight: int = 0  # answered writes still on their way to a replica (each lands or leaves a hint)
    in_flight_hints_by_target: dict[str, int] = field(default_factory=dict)  # of hints_by_target: forwards on their way

    def clock_skewed(self) -> dict[str, int]:
        """The peers whose clock is further off than max_clock_skew, and by how much."""
        limit = self.max_clock_skew_ms
        return {p: o for p, o in self.clock_offset_ms.items() if limit and abs(o) > limit}


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
    inactive_readers: int = 0  # readers who went away (fanout.inactive_after): fan-out skips them
    inbox_entries_skipped: int = 0  # entries not written for them since start


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


def post_page(reply: feed_pb2.PostPage) -> Page[Post]:
    return Page([Post.from_proto(p) for p in reply.posts], reply.next_page_token, reply.gap)


def user_page(reply: feed_pb2.UserPage) -> Page[str]:
    return Page(list(reply.users), reply.next_page_token)


def user_of(r: feed_pb2.User) -> User:
    return User(r.user, r.follower_count, r.following_count, r.post_count, r.hot)


def repair_progress_of(p: admin_pb2.RepairClusterProgress) -> RepairProgress:
    return RepairProgress(
        p.partitions_total, p.partitions_done, p.out_of_sync, p.keys_repaired, list(p.unreachable), p.done
    )


def cluster_status_of(r: admin_pb2.ClusterStatus) -> ClusterStatus:
    """Every node's health and load as the router sees it (nodes it cannot reach are unhealthy)."""
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
                    n.delivery.inactive_readers,
                    n.delivery.inbox_entries_skipped,
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
                    dict(n.replication.clock_offset_ms),
                    n.replication.max_clock_skew_ms,
                    n.replication.writes_restamped,
                    n.replication.tombstones_collected,
                    n.replication.forwards_in_flight,
                    dict(n.replication.in_flight_hints_by_target),
                ),
                n.disk_error,
                n.leveldb_cache_bytes,
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
