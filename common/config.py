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

__all__ = ["ConfigError", "NodeConfig", "RouterConfig", "Limits", "HotUsers", "ClusterConfig", "load"]


class ConfigError(ValueError):
    """cluster.toml is missing, unreadable or invalid; the message names the key."""


@dataclass(frozen=True)
class NodeConfig:
    id: str
    address: str
    data_dir: Path
    weight: int = 1


@dataclass(frozen=True)
class RouterConfig:
    id: int
    address: str
    workers: int = 1


@dataclass(frozen=True)
class Limits:
    timeline_cap: int = 800
    page_size_default: int = 20
    page_size_max: int = 200
    post_max_bytes: int = 1024
    backfill_posts: int = 50
    rpc_timeout_s: float = 5.0


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
class Replication:
    write_quorum: int = 0  # replicas that must have a write before it is acknowledged; 0: a majority
    replica_timeout_s: float = 1.0  # one replica's share of a call that can fall over to another
    repair_interval_s: float = 300.0  # between background anti-entropy passes (0: off)
    repair_max_keys_per_second: int = 20_000  # a pass's pace, so it never starves client traffic
    max_hints_per_node: int = 1_000_000  # writes held for one unreachable node; past it, repair catches it up


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

    def text(self, key: str, default: Any = None) -> str:
        value = self._get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string (got {value!r})")
        return value

    def address(self, key: str) -> str:
        value = self.text(key, _REQUIRED)
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise self.fail(key, f"must be host:port (got {value!r})")
        return value

    def check_unknown(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.fail(unknown[0], "is not a known setting (a typo?)")


_REQUIRED = object()


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
    for key in ("cluster", "limits", "hot_users", "replication", "nodes", "routers"):
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
    # A cluster of fewer nodes than replication_factor keeps a replica on every node.

    routers = tuple(_router(path, i, t) for i, t in enumerate(_array(path, raw, "routers")))
    if not routers:
        raise ConfigError(f"{path}: routers must list at least one [[routers]] entry")
    _unique(path, "routers", "id", [str(r.id) for r in routers])

    lim = _Reader(path, _table(path, raw, "limits"), "limits.")
    limits = Limits(
        timeline_cap=lim.integer("timeline_cap", 800, minimum=1),
        page_size_default=lim.integer("page_size_default", 20, minimum=1),
        page_size_max=lim.integer("page_size_max", 200, minimum=1),
        post_max_bytes=lim.integer("post_max_bytes", 1024, minimum=1, maximum=1 << 20),
        backfill_posts=lim.integer("backfill_posts", 50, minimum=0),
        rpc_timeout_s=lim.number("rpc_timeout_s", 5.0, 0.01, 600.0),
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
        salt_buckets=hot.integer("salt_buckets", 8, minimum=1, maximum=256),
        cache_max_entries=hot.integer("cache_max_entries", 1000, minimum=1),
        cache_posts_per_user=hot.integer("cache_posts_per_user", 200, minimum=1),
        cache_ttl_ms=hot.integer("cache_ttl_ms", 1000, minimum=0),
    )
    hot.check_unknown()

    rep = _Reader(path, _table(path, raw, "replication"), "replication.")
    replication = Replication(
        write_quorum=rep.integer("write_quorum", 0, minimum=0, maximum=replication_factor),
        replica_timeout_s=rep.number("replica_timeout_s", 1.0, 0.01, 600.0),
        repair_interval_s=rep.number("repair_interval_s", 300.0, 0.0, 86400.0 * 30),
        repair_max_keys_per_second=rep.integer("repair_max_keys_per_second", 20_000, minimum=0),
        max_hints_per_node=rep.integer("max_hints_per_node", 1_000_000, minimum=0),
    )
    rep.check_unknown()

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
    if not node_id.replace("-", "").replace("_", "").isalnum():
        raise r.fail("id", f"must be letters, digits, '-' or '_' (got {node_id!r})")
    node = NodeConfig(
        id=node_id,
        address=r.address("address"),
        data_dir=base / r.text("data_dir", f"data/{node_id}"),
        weight=r.integer("weight", 1, minimum=1, maximum=100),
    )
    r.check_unknown()
    return node


def _router(path: Path, index: int, table: dict[str, Any]) -> RouterConfig:
    r = _Reader(path, table, f"routers[{index}].")
    # Router ids go into post ids (6 bits, times 16 worker slots): 0..63.
    router = RouterConfig(
        id=r.integer("id", _REQUIRED, minimum=0, maximum=63),
        address=r.address("address"),
        workers=r.integer("workers", 1, minimum=1, maximum=16),
    )
    r.check_unknown()
    return router


def _unique(path: Path, array: str, key: str, values: list[str]) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ConfigError(f"{path}: {array}[{i}].{key} {value!r} is used twice")
        seen.add(value)
