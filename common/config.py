"""cluster.toml, read once into frozen dataclasses and validated.

Nothing else in feedring parses TOML. Every error names the file and the key, e.g.
``cluster.toml: limits.page_size_max must be an integer >= 1 (got 0)``. Relative paths (data
directories, the run directory) are resolved against the directory of the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "is_address",
    "is_node_id",
    "ConfigError",
    "NodeConfig",
    "RouterConfig",
    "Limits",
    "Storage",
    "COMPRESSIONS",
    "HotUsers",
    "MAX_SALT_BUCKETS",
    "ClusterConfig",
    "load",
]


class ConfigError(ValueError):
    """cluster.toml is missing, unreadable or invalid; the message names the key."""


MAX_SALT_BUCKETS = 256  # a hot user's posts and followers spread over at most this many keys


@dataclass(frozen=True)
class NodeConfig:
    id: str
    address: str
    data_dir: Path
    weight: int = 1
    metrics: str = ""  # host:port of its Prometheus /metrics ("": none)
    bind: str = ""  # host:port it listens on, when not its (advertised) address, e.g. 0.0.0.0:7101
    feed: str = ""  # host:port of its public Feed API, which map-aware clients call ("": none)
    feed_bind: str = ""  # host:port the Feed API listens on, when not `feed`
    metrics_bind: str = ""  # host:port /metrics listens on, when not `metrics`, e.g. 0.0.0.0:9100

    @property
    def listen(self) -> str:
        return self.bind or self.address

    @property
    def feed_listen(self) -> str:
        return self.feed_bind or self.feed

    @property
    def metrics_listen(self) -> str:
        return self.metrics_bind or self.metrics


@dataclass(frozen=True)
class RouterConfig:
    id: int
    address: str
    workers: int = 1
    metrics: str = ""  # host:port of worker 0's /metrics; worker i serves on port + i ("": none)
    bind: str = ""  # host:port it listens on, when not its (advertised) address
    metrics_bind: str = ""  # host:port worker 0's /metrics listens on, when not `metrics`

    @property
    def listen(self) -> str:
        return self.bind or self.address

    def metrics_address(self, worker: int) -> str:
        """Where worker `worker`'s /metrics is scraped ("": none)."""
        return _plus(self.metrics, worker)

    def metrics_listen(self, worker: int) -> str:
        """Where worker `worker`'s /metrics listens."""
        return _plus(self.metrics_bind or self.metrics, worker)


def _plus(address: str, ports: int) -> str:
    if not address:
        return ""
    host, _, port = address.rpartition(":")
    return f"{host}:{int(port) + ports}"


@dataclass(frozen=True)
class Limits:
    timeline_cap: int = 800
    page_size_default: int = 20
    page_size_max: int = 200
    post_max_bytes: int = 1024
    backfill_posts: int = 50
    rpc_timeout_s: float = 5.0
    fanout_share: float = 0.3  # most of a node's loop fan-out writes take while timeline reads arrive
    fanout_full_speed_after_s: float = 2.0  # ... growing to all of it for a post this old (0: always)
    max_concurrent_rpcs: int = 1024  # calls a router worker answers at once; more: RESOURCE_EXHAUSTED
    max_watch_streams: int = 1000  # open WatchTimeline streams per process (beside max_concurrent_rpcs)
    watch_stall_s: float = 30.0  # a watcher that takes no event for this long is ended (it resumes)


@dataclass(frozen=True)
class HotUsers:
    users: tuple[str, ...] = ()
    follower_threshold: int = 10_000
    cooldown_ratio: float = 0.8
    salt_buckets: int = 8
    cache_max_entries: int = 1000
    cache_posts_per_user: int = 200
    cache_ttl_ms: int = 1000


@dataclass(frozen=True)
class Fanout:
    # A reader who has not read their timeline for this long gets no fan-out writes until they
    # read again (their first read rebuilds the timeline); 0: never.
    inactive_after_s: float = 14 * 86400.0

    @property
    def sweep_every_s(self) -> float:
        """How often a node re-derives who is inactive: a twentieth of inactive_after, 0.1 s to 10 min."""
        return min(max(self.inactive_after_s / 20, 0.1), 600.0)


@dataclass(frozen=True)
class Replication:
    write_quorum: int = 0  # replicas that must have a write before it is acknowledged; 0: a majority
    replica_timeout_s: float = 1.0  # one replica's share of a call that can fall over to another
    repair_interval_s: float = 3600.0  # between background anti-entropy passes (0: off)
    repair_max_keys_per_second: int = 20_000  # a pass's pace, so it never starves client traffic
    max_hints_per_node: int = 1_000_000  # writes held for one unreachable node; past it, repair catches it up
    max_hint_age_s: float = 3 * 3600.0  # older hints are dropped (less than gc_grace); repair catches up
    max_clock_skew_s: float = 1.0  # a peer's wall clock further off than this is warned of (0: never)
    # Post tombstones and dead edges older than this (and seen by a repair on every replica) are
    # collected; a node down longer than this may not rejoin (node/tombstones.py).
    gc_grace_s: float = 10 * 86400.0


@dataclass(frozen=True)
class Storage:
    # How a node's LevelDB stores its table blocks: "none" or "snappy". Compressing costs most of
    # compaction's CPU (measured: 5.7 against 1.6 us per inbox entry) for less disk (a fifth on random words).
    compression: str = "none"
    # Readers whose first timeline page a node keeps in memory (node/timeline_cache.py): ~5 KB each
    # at the default page size; 0 turns the cache off.
    timeline_cache: int = 4096
    # LevelDB's memtable (MiB; each node's is drawn within +-25% of it, so replicas taking the same
    # writes do not flush at the same moment) and table file size (MiB): LevelDB's own 4 and 2. A
    # store alone fills faster with 32 and 32 (python -m bench.store_growth: 3.5x to 1.6 GB), but in
    # the shipped cluster on two cores every latency got several times worse (docs/performance.md,
    # 2026-12-06 20:05; not traced: one 32 MB table outgrows LevelDB's fixed 10 MB level 1, so its
    # compaction may never rest).
    write_buffer_mb: int = 4
    table_file_mb: int = 2


@dataclass(frozen=True)
class Security:
    # Paths are resolved by load() (default: in run_dir); these defaults serve configs built in tests.
    secret_file: Path = Path("cluster.secret")  # the cluster secret; $FEEDRING_CLUSTER_SECRET overrides it
    client_tokens_file: Path = Path("client.tokens")  # Feed API tokens, one per line; $FEEDRING_CLIENT_TOKENS too
    feed_requires_token: bool = False  # Feed calls need a client token (or the secret)


@dataclass(frozen=True)
class Tls:
    enabled: bool = False  # TLS to clients, mutual TLS between nodes and routers
    cert_dir: Path = Path("tls")  # <name>.crt/.key per process (node id, router-<id>), ops.crt/.key; by load()
    ca_file: Path = Path("tls/ca.crt")  # the CA every process and client trusts


@dataclass(frozen=True)
class ClusterConfig:
    path: Path
    name: str
    partitions: int
    replication_factor: int
    vnodes: int
    run_dir: Path
    nodes: tuple[NodeConfig, ...]
    routers: tuple[RouterConfig, ...]
    limits: Limits = field(default_factory=Limits)
    hot: HotUsers = field(default_factory=HotUsers)
    replication: Replication = field(default_factory=Replication)
    fanout: Fanout = field(default_factory=Fanout)
    storage: Storage = field(default_factory=Storage)
    security: Security = field(default_factory=Security)
    tls: Tls = field(default_factory=Tls)

    def node(self, node_id: str) -> NodeConfig:
        for node in self.nodes:
            if node.id == node_id:
                return node
        known = ", ".join(n.id for n in self.nodes)
        raise ConfigError(f"{self.path}: no node with id {node_id!r} (nodes: {known})")

    def router(self, router_id: int) -> RouterConfig:
        for router in self.routers:
            if router.id == router_id:
                return router
        raise ConfigError(f"{self.path}: no router with id {router_id}")


_REQUIRED = object()
COMPRESSIONS = ("none", "snappy")  # storage.compression: LevelDB's block compressions
_UNITS_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def is_address(value: str) -> bool:
    """host:port, the port 1..65535 (what a node or router listens on)."""
    host, sep, port = value.rpartition(":")
    return bool(sep and host and port.isascii() and port.isdigit() and 0 < int(port) < 65536)


def is_node_id(value: str) -> bool:
    return 0 < len(value) <= 64 and value.isascii() and value.replace("-", "").replace("_", "").isalnum()


class _Reader:
    """Typed access to one TOML table, with errors that name the file and the key."""

    def __init__(self, path: Path, table: dict[str, Any], prefix: str) -> None:
        self.path, self.table, self.prefix = path, table, prefix
        self.used: set[str] = set()

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.prefix}{key} {problem}")

    def _get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        if key in self.table:
            return self.table[key]
        if default is _REQUIRED:
            raise self.fail(key, "is required")
        return default

    def integer(self, key: str, default: Any = None, minimum: int = 0, maximum: int | None = None) -> int:
        value = self._get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < minimum
            or (maximum is not None and value > maximum)
        ):
            bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise self.fail(key, f"must be an integer {bound} (got {value!r})")
        return value

    def number(self, key: str, default: Any, low: float, high: float) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise self.fail(key, f"must be a number from {low} to {high} (got {value!r})")
        return float(value)

    def duration(self, key: str, default: float) -> float:
        """Seconds, from a number of seconds or a string such as "90s", "30m", "12h", "14d"."""
        value = self._get(key, default)
        if isinstance(value, str) and value[-1:] in _UNITS_S:
            number = value[:-1].strip()
            if number.replace(".", "", 1).isdigit():
                return float(number) * _UNITS_S[value[-1]]
        if not isinstance(value, bool) and isinstance(value, (int, float)) and value >= 0:
            return float(value)
        raise self.fail(key, f'must be seconds or a duration such as "90s", "30m", "12h", "14d" (got {value!r})')

    def text(self, key: str, default: Any = None) -> str:
        value = self._get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string (got {value!r})")
        return value

    def address(self, key: str, default: Any = _REQUIRED) -> str:
        value = self.text(key, default)
        if not is_address(value):
            raise self.fail(key, f"must be host:port (got {value!r})")
        return value

    def check_unknown(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.fail(unknown[0], "is not a known setting (a typo?)")


def load(path: str | Path) -> ClusterConfig:
    """Reads and validates a cluster file; raises ConfigError naming the offending key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such cluster file") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    base = path.resolve().parent

    top = _Reader(path, raw, "")
    for key in (
        "cluster",
        "limits",
        "hot_users",
        "replication",
        "fanout",
        "storage",
        "security",
        "tls",
        "nodes",
        "routers",
    ):
        top.used.add(key)
    top.check_unknown()

    cluster = _Reader(path, _table(path, raw, "cluster"), "cluster.")
    name = cluster.text("name", "feedring")
    partitions = cluster.integer("partitions", 1024, minimum=1, maximum=65535)
    replication_factor = cluster.integer("replication_factor", 1, minimum=1)
    vnodes = cluster.integer("vnodes", 160, minimum=1)
    run_dir = base / cluster.text("run_dir", ".run")
    cluster.check_unknown()

    nodes = tuple(_node(path, base, i, t) for i, t in enumerate(_array(path, raw, "nodes")))
    if not nodes:
        raise ConfigError(f"{path}: nodes must list at least one [[nodes]] entry")
    _unique(path, "nodes", "id", [n.id for n in nodes])
    _unique(path, "nodes", "address", [n.address for n in nodes])
    _unique(path, "nodes", "data_dir", [str(n.data_dir) for n in nodes])
    _unique(path, "nodes", "feed", [n.feed for n in nodes if n.feed])
    # A cluster of fewer nodes than replication_factor keeps a replica on every node.

    routers = tuple(_router(path, i, t) for i, t in enumerate(_array(path, raw, "routers")))
    if not routers:
        raise ConfigError(f"{path}: routers must list at least one [[routers]] entry")
    _unique(path, "routers", "id", [str(r.id) for r in routers])
    metrics = [n.metrics for n in nodes if n.metrics] + [
        r.metrics_address(w) for r in routers if r.metrics for w in range(r.workers)
    ]
    if len(set(metrics)) != len(metrics):
        twice = sorted({m for m in metrics if metrics.count(m) > 1})
        raise ConfigError(f"{path}: metrics address {twice[0]} is used twice (router worker i serves on port + i)")
    _distinct_listeners(path, nodes, routers)

    lim = _Reader(path, _table(path, raw, "limits"), "limits.")
    limits = Limits(
        timeline_cap=lim.integer("timeline_cap", 800, minimum=1),
        page_size_default=lim.integer("page_size_default", 20, minimum=1),
        page_size_max=lim.integer("page_size_max", 200, minimum=1),
        post_max_bytes=lim.integer("post_max_bytes", 1024, minimum=1, maximum=1 << 20),
        backfill_posts=lim.integer("backfill_posts", 50, minimum=0),
        rpc_timeout_s=lim.number("rpc_timeout_s", 5.0, 0.01, 600.0),
        fanout_share=lim.number("fanout_share", 0.3, 0.05, 1.0),
        fanout_full_speed_after_s=lim.number("fanout_full_speed_after_s", 2.0, 0.0, 3600.0),
        max_concurrent_rpcs=lim.integer("max_concurrent_rpcs", 1024, minimum=16, maximum=1 << 20),
        max_watch_streams=lim.integer("max_watch_streams", 1000, minimum=0, maximum=1 << 20),
        watch_stall_s=lim.number("watch_stall_s", 30.0, 0.1, 3600.0),
    )
    lim.check_unknown()
    if limits.page_size_default > limits.page_size_max:
        raise ConfigError(f"{path}: limits.page_size_default must not exceed limits.page_size_max")

    hot = _Reader(path, _table(path, raw, "hot_users"), "hot_users.")
    users = hot._get("users", [])
    if not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
        raise hot.fail("users", "must be a list of user ids")
    hot_users = HotUsers(
        users=tuple(users),
        follower_threshold=hot.integer("follower_threshold", 10_000, minimum=1),
        cooldown_ratio=hot.number("cooldown_ratio", 0.8, 0.0, 1.0),
        salt_buckets=hot.integer("salt_buckets", 8, minimum=1, maximum=MAX_SALT_BUCKETS),
        cache_max_entries=hot.integer("cache_max_entries", 1000, minimum=1),
        cache_posts_per_user=hot.integer("cache_posts_per_user", 200, minimum=1),
        cache_ttl_ms=hot.integer("cache_ttl_ms", 1000, minimum=0),
    )
    hot.check_unknown()

    rep = _Reader(path, _table(path, raw, "replication"), "replication.")
    replication = Replication(
        write_quorum=rep.integer("write_quorum", 0, minimum=0, maximum=replication_factor),
        replica_timeout_s=rep.number("replica_timeout_s", 1.0, 0.01, 600.0),
        repair_interval_s=rep.number("repair_interval_s", 3600.0, 0.0, 86400.0 * 30),
        repair_max_keys_per_second=rep.integer("repair_max_keys_per_second", 20_000, minimum=0),
        max_hints_per_node=rep.integer("max_hints_per_node", 1_000_000, minimum=0),
        max_hint_age_s=rep.duration("max_hint_age", 3 * 3600.0),
        max_clock_skew_s=rep.duration("max_clock_skew", 1.0),
        gc_grace_s=rep.duration("gc_grace", 10 * 86400.0),
    )
    rep.check_unknown()
    if replication.gc_grace_s <= 0:
        raise rep.fail("gc_grace", "must be more than 0 (tombstones collected at once could let deleted data back)")
    if not 0 < replication.max_hint_age_s < replication.gc_grace_s:
        raise rep.fail(
            "max_hint_age",
            f"must be more than 0 and less than gc_grace ({replication.gc_grace_s:g} s): a hint older than "
            "the tombstones that beat it could bring deleted data back",
        )

    fan = _Reader(path, _table(path, raw, "fanout"), "fanout.")
    fanout = Fanout(inactive_after_s=fan.duration("inactive_after", 14 * 86400.0))
    fan.check_unknown()

    sto = _Reader(path, _table(path, raw, "storage"), "storage.")
    compression = sto.text("compression", "none")
    if compression not in COMPRESSIONS:
        raise sto.fail("compression", f"must be one of {', '.join(map(repr, COMPRESSIONS))} (got {compression!r})")
    storage = Storage(
        compression=compression,
        timeline_cache=sto.integer("timeline_cache", 4096, maximum=1_000_000),
        write_buffer_mb=sto.integer("write_buffer_mb", 4, minimum=1, maximum=1024),
        table_file_mb=sto.integer("table_file_mb", 2, minimum=1, maximum=1024),
    )
    sto.check_unknown()

    sec = _Reader(path, _table(path, raw, "security"), "security.")
    feed_requires_token = sec._get("feed_requires_token", False)
    if not isinstance(feed_requires_token, bool):
        raise sec.fail("feed_requires_token", "must be true or false")
    security = Security(
        secret_file=base / sec.text("secret_file", str(run_dir / "cluster.secret")),
        client_tokens_file=base / sec.text("client_tokens_file", str(run_dir / "client.tokens")),
        feed_requires_token=feed_requires_token,
    )
    sec.check_unknown()

    t = _Reader(path, _table(path, raw, "tls"), "tls.")
    tls_enabled = t._get("enabled", False)
    if not isinstance(tls_enabled, bool):
        raise t.fail("enabled", "must be true or false")
    cert_dir = base / t.text("cert_dir", str(run_dir / "tls"))
    tls = Tls(enabled=tls_enabled, cert_dir=cert_dir, ca_file=base / t.text("ca_file", str(cert_dir / "ca.crt")))
    t.check_unknown()

    return ClusterConfig(
        path=path,
        name=name,
        partitions=partitions,
        replication_factor=replication_factor,
        vnodes=vnodes,
        run_dir=run_dir,
        nodes=nodes,
        routers=routers,
        limits=limits,
        hot=hot_users,
        replication=replication,
        fanout=fanout,
        storage=storage,
        security=security,
        tls=tls,
    )


def _table(path: Path, raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key} must be a table ([{key}])")
    return value


def _array(path: Path, raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ConfigError(f"{path}: {key} must be an array of tables ([[{key}]])")
    return value


def _node(path: Path, base: Path, index: int, table: dict[str, Any]) -> NodeConfig:
    r = _Reader(path, table, f"nodes[{index}].")
    node_id = r.text("id", _REQUIRED)
    if not is_node_id(node_id):
        raise r.fail("id", f"must be letters, digits, '-' or '_' (got {node_id!r})")
    node = NodeConfig(
        id=node_id,
        address=r.address("address"),
        data_dir=base / r.text("data_dir", f"data/{node_id}"),
        weight=r.integer("weight", 1, minimum=1, maximum=100),
        metrics=r.address("metrics", "") if "metrics" in table else "",
        bind=r.address("bind", "") if "bind" in table else "",
        feed=r.address("feed", "") if "feed" in table else "",
        feed_bind=r.address("feed_bind", "") if "feed_bind" in table else "",
        metrics_bind=r.address("metrics_bind", "") if "metrics_bind" in table else "",
    )
    if node.feed_bind and not node.feed:
        raise r.fail("feed_bind", "needs `feed`, the address clients reach the node's Feed API at")
    if node.metrics_bind and not node.metrics:
        raise r.fail("metrics_bind", "needs `metrics`, the address /metrics is scraped at")
    r.check_unknown()
    return node


def _router(path: Path, index: int, table: dict[str, Any]) -> RouterConfig:
    r = _Reader(path, table, f"routers[{index}].")
    # Router ids go into post ids (5 bits, times 16 worker slots: generators 0..511; nodes have the
    # rest, feed/post_ids.py): 0..31.
    router = RouterConfig(
        id=r.integer("id", _REQUIRED, minimum=0, maximum=31),
        address=r.address("address"),
        workers=r.integer("workers", 1, minimum=1, maximum=16),
        metrics=r.address("metrics", "") if "metrics" in table else "",
        bind=r.address("bind", "") if "bind" in table else "",
        metrics_bind=r.address("metrics_bind", "") if "metrics_bind" in table else "",
    )
    if router.metrics_bind and not router.metrics:
        raise r.fail("metrics_bind", "needs `metrics`, the address /metrics is scraped at")
    r.check_unknown()
    return router


def _distinct_listeners(path: Path, nodes: tuple[NodeConfig, ...], routers: tuple[RouterConfig, ...]) -> None:
    """No two servers of the cluster are reached at one address (advertised: processes on separate
    hosts may all bind 0.0.0.0:7101). A router given a node's port starts anyway when the node is
    up (its bind fails, the node answers health checks there), and its callers are answered by the
    node: "Method not found" for every Admin call."""
    owners: dict[str, str] = {}
    listeners = [(f"nodes {n.id} address", n.address) for n in nodes]
    listeners += [(f"nodes {n.id} feed", n.feed) for n in nodes if n.feed]
    listeners += [(f"nodes {n.id} metrics", n.metrics) for n in nodes if n.metrics]
    listeners += [(f"routers {r.id} address", r.address) for r in routers]
    listeners += [
        (f"routers {r.id} worker {w} metrics", r.metrics_address(w))
        for r in routers
        if r.metrics
        for w in range(r.workers)
    ]
    for owner, address in listeners:
        if address in owners and owners[address] != owner:
            raise ConfigError(f"{path}: {owner} and {owners[address]} are both at {address}")
        owners[address] = owner


def _unique(path: Path, array: str, key: str, values: list[str]) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ConfigError(f"{path}: {array}[{i}].{key} {value!r} is used twice")
        seen.add(value)
