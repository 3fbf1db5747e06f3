"""Helpers shared by the test suites: free ports, cluster files, and eventually()."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out, so parallel runs and other clusters do not collide."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_cluster_file(
    directory: Path,
    nodes: int = 3,
    partitions: int = 64,
    limits: dict[str, object] | None = None,
    hot_users: dict[str, object] | None = None,
    router_workers: int = 1,
    replication_factor: int = 3,
    replication: dict[str, object] | None = None,
    security: dict[str, object] | None = None,
    metrics: bool = False,
    tls: dict[str, object] | None = None,
    routers: int = 1,
    fanout: dict[str, object] | None = None,
) -> Path:
    ports = free_ports(2 * (nodes + 1) if metrics else nodes + 1)
    ports, metrics_ports = ports[: nodes + 1], ports[nodes + 1 :]
    feed_ports = free_ports(nodes)  # each node's public Feed API
    lines = [
        "[cluster]",
        'name = "test"',
        f"partitions = {partitions}",
        f"replication_factor = {replication_factor}",
        'run_dir = "run"',
        "",
        "[replication]",
        *(f"{k} = {_toml(v)}" for k, v in (replication or {}).items()),
        "",
        "[limits]",
        *(f"{k} = {_toml(v)}" for k, v in (limits or {}).items()),
        "",
        "[hot_users]",
        *(f"{k} = {_toml(v)}" for k, v in (hot_users or {}).items()),
        "",
        "[security]",
        *(f"{k} = {_toml(v)}" for k, v in (security or {}).items()),
        "",
        "[tls]",
        *(f"{k} = {_toml(v)}" for k, v in (tls or {}).items()),
        "",
        "[fanout]",
        *(f"{k} = {_toml(v)}" for k, v in (fanout or {}).items()),
        "",
    ]
    for i in range(nodes):
        lines += [
            "[[nodes]]",
            f'id = "n{i + 1}"',
            f'address = "127.0.0.1:{ports[i + 1]}"',
            f'data_dir = "data/n{i + 1}"',
            f'feed = "127.0.0.1:{feed_ports[i]}"',
            *([f'metrics = "127.0.0.1:{metrics_ports[i + 1]}"'] if metrics else []),
            "",
        ]
    lines += ["[[routers]]", "id = 0", f'address = "127.0.0.1:{ports[0]}"', f"workers = {router_workers}"]
    lines += [f'metrics = "127.0.0.1:{metrics_ports[0]}"'] if metrics else []
    for router_id, port in enumerate(free_ports(routers - 1), start=1):  # more routers: no metrics
        lines += ["", "[[routers]]", f"id = {router_id}", f'address = "127.0.0.1:{port}"']
    lines += [""]
    path = directory / "cluster.toml"
    path.write_text("\n".join(lines))
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def eventually(check: Callable[[], T], timeout_s: float = 5.0, interval_s: float = 0.05) -> T:
    """Retries `check` until it stops raising AssertionError, or re-raises the last one."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(interval_s)


def node_digests(address: str, partitions: int, secret: str) -> dict[int, list[int]]:
    """A node's per-bucket digests of every partition (equal on two replicas: same data)."""
    import grpc

    from common import security
    from protos import storage_pb2, storage_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        reply = storage_pb2_grpc.StorageStub(channel).GetDigests(
            storage_pb2.GetDigestsRequest(partitions=list(range(partitions))),
            timeout=30,
            metadata=security.bearer(secret),
        )
    return {d.partition: list(d.buckets) for d in reply.digests}
