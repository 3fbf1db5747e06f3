"""The measured scenarios, each returning plain numbers for the report."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.harness import Mix, run_load
from bench.processes import cpu_seconds, server_pids
from bench.stats import summary
from client import FeedClient
from ops.local_cluster import LocalCluster
from protos import admin_pb2, admin_pb2_grpc

__all__ = [
    "write_cluster_file",
    "post_ack_by_class",
    "wait_for_deliveries",
    "wait_for_hot_transitions",
    "delivery",
    "timeline_read_with_hot_followees",
    "burst",
    "rebalance",
    "node_figures",
]


class _Ports:
    """Free loopback ports, each different: every probe socket stays bound until all are chosen
    (a port probed and released can be handed out again at once: a router once got a node's Feed
    port, and every Admin call of that bench phase was answered by the node)."""

    def __init__(self) -> None:
        self._held: list[socket.socket] = []

    def one(self) -> int:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self._held.append(s)
        return int(s.getsockname()[1])

    def pair(self) -> int:
        """A port free together with the next one (a router's 2 workers serve /metrics on port + i)."""
        while True:
            port = self.one()
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                s.close()
                continue
            self._held.append(s)
            return port

    def release(self) -> None:
        for s in self._held:
            s.close()
        self._held.clear()


def _free_port() -> int:
    ports = _Ports()
    try:
        return ports.one()
    finally:
        ports.release()


def write_cluster_file(
    directory: Path,
    threshold: int,
    salt_buckets: int,
    hot_users: list[str],
    replication_factor: int = 3,
    extra: list[str] | None = None,
    metrics: bool = False,
) -> Path:
    """The bench cluster: 3 nodes, each serving the Feed API too, and a router with 2 workers; three
    copies of each partition as shipped (2026-12-04 on: earlier runs' main figures were at one copy),
    unless `replication_factor` says otherwise: one copy is measured beside it (bench/replication.py).
    `metrics`: every process serves /metrics, as shipped (the soak reads it); the other phases run
    without, as their earlier figures did."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        "[cluster]",
        'name = "bench"',
        "partitions = 1024",
        f"replication_factor = {replication_factor}",
        'run_dir = "run"',
        "",
        "[hot_users]",
        f"follower_threshold = {threshold}",
        f"salt_buckets = {salt_buckets}",
        "users = [" + ", ".join(f'"{u}"' for u in hot_users) + "]",
        "",
        *(extra or []),  # more sections (bench/inactive_readers.py: [fanout])
    ]
    ports = _Ports()
    try:
        for i in range(1, 4):
            lines += ["[[nodes]]", f'id = "n{i}"', f'address = "127.0.0.1:{ports.one()}"', f'data_dir = "data/n{i}"']
            lines += [f'feed = "127.0.0.1:{ports.one()}"']  # its public Feed API (one-hop reads)
            lines += [f'metrics = "127.0.0.1:{ports.one()}"', ""] if metrics else [""]
        lines += ["[[routers]]", "id = 0", f'address = "127.0.0.1:{ports.one()}"', "workers = 2"]
        lines += [f'metrics = "127.0.0.1:{ports.pair()}"', ""] if metrics else [""]
    finally:
        ports.release()
    path = directory / "cluster.toml"
    path.write_text("\n".join(lines))
    return path


def wait_for_deliveries(client: FeedClient, timeout_s: float = 300.0) -> float:
    """Waits until no node owes a delivery: nodes deliver after the acknowledgement, so a phase that
    follows a burst of posts would otherwise measure the previous phase's delivery too. Returns the
    seconds waited (a phase that had to wait long says how far behind the cluster was)."""
    started = time.perf_counter()
    deadline = started + timeout_s
    while sum(n.delivery.records for n in client.cluster_status().nodes) and time.perf_counter() < deadline:
        time.sleep(0.1)
    waited = time.perf_counter() - started
    if waited >= timeout_s:
        print(f"    deliveries still owed after {timeout_s:.0f} s; the next phase starts with them", flush=True)
    return waited


def wait_for_hot_transitions(client: FeedClient, timeout_s: float = 900.0) -> float:
    """Waits until no user is moving to or from merge-at-read (MIGRATING, COOLING): a 1M-follower
    author's move marks a million inbox records on every replica, minutes of work that the phases
    after the load would otherwise measure beside their own. Returns the seconds waited."""
    started = time.perf_counter()
    deadline = started + timeout_s
    shown = ""
    while time.perf_counter() < deadline:
        moving = [h for h in client.cluster_status().hot_registry if h.state in ("MIGRATING", "COOLING")]
        if not moving:
            break
        now = ", ".join(f"{h.user} {h.state.lower()} ({h.follower_count:,} followers)" for h in moving)
        if now != shown:
            print(f"    waiting for hot-user transitions: {now}", flush=True)
            shown = now
        time.sleep(1.0)
    else:
        print(f"    hot-user transitions still running after {timeout_s:.0f} s; the next phase starts with them")
    return time.perf_counter() - started


def post_ack_by_class(client: FeedClient, classes: dict[str, int], posts: int) -> dict[str, dict[str, float]]:
    """Sequential posts by one author per follower-count class: how long until acknowledged, each
    class on a cluster that owes no delivery from the one before."""
    out = {}
    for label, followers in classes.items():
        wait_for_deliveries(client)
        author = f"c{followers}"
        latencies = []
        for i in range(posts):
            started = time.perf_counter()
            client.post(author, f"class {label} post {i}")
            latencies.append(time.perf_counter() - started)
        out[label] = {**summary(latencies), "followers": float(followers), "hot": float(client.get_user(author).hot)}
    return out


def delivery(
    client: FeedClient,
    cluster: LocalCluster,
    author: str,
    follower: str,
    authors: list[str],
    followers_each: int,
    posts: int,
) -> dict[str, float]:
    """Lag from ack to visible in a follower's timeline; then a burst (the `authors` post at once):
    follower inboxes reached per second and the nodes' CPU per entry written, measured once the
    fan-out queued by earlier phases has drained. Rates come from the nodes' counts of entries
    their deliveries wrote (each entry once, by the node driving it), not from key counts."""
    rf = min(cluster.config.replication_factor, len(cluster.config.nodes))
    node_pids = [pid for name, pid in server_pids(cluster).items() if not name.startswith("router")]

    def reached() -> int:
        return sum(n.delivery.inbox_writes for n in client.cluster_status().nodes)

    wait_for_deliveries(client)
    _wait_until_quiet(reached)
    lags = []
    for i in range(posts):
        post = client.post(author, f"lag probe {i}")
        acked = time.perf_counter()
        while client.timeline(follower, page_size=1).items[:1] != [post]:
            if time.perf_counter() - acked > 10:
                break
            time.sleep(0.0005)
        lags.append(time.perf_counter() - acked)
    lag = summary(lags)
    wait_for_deliveries(client)
    _wait_until_quiet(reached)
    before = reached()
    cpu_before = sum(cpu_seconds(pid) for pid in node_pids)
    expected = len(authors) * followers_each
    started = time.perf_counter()
    with ThreadPoolExecutor(len(set(authors))) as posters:  # the authors post concurrently
        list(posters.map(lambda a: client.post(a, "rate probe"), authors))
    while (written := reached() - before) < expected and time.perf_counter() - started < 60:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    cpu = sum(cpu_seconds(pid) for pid in node_pids) - cpu_before
    return {
        "lag_p50_ms": lag["p50_ms"],
        "lag_p99_ms": lag["p99_ms"],
        "replication_factor": float(rf),
        "inbox_entries_per_s": written / elapsed,  # follower inboxes reached per second
        "replica_writes_per_s": written * rf / elapsed,  # inbox entries written on every replica
        "inbox_entries": float(written),
        # All nodes' CPU (user + system) over the burst, per inbox entry written on one replica.
        "node_cpu_us_per_entry": cpu / max(written * rf, 1) * 1e6,
    }


def _wait_until_quiet(count: Callable[[], int], timeout_s: float = 120.0) -> None:
    """Waits until `count` stops changing for a second (no fan-out left in flight)."""
    deadline = time.perf_counter() + timeout_s
    last, still = count(), 0
    while still < 4 and time.perf_counter() < deadline:
        time.sleep(0.25)
        now = count()
        still = still + 1 if now == last else 0
        last = now


def timeline_read_with_hot_followees(client: FeedClient, hot_fan: str, plain_fan: str, reads: int) -> dict[str, float]:
    def measure(user: str) -> dict[str, float]:
        latencies = []
        for _ in range(reads):
            started = time.perf_counter()
            client.timeline(user)
            latencies.append(time.perf_counter() - started)
        return summary(latencies)

    measure(hot_fan)  # warm the hot-post cache as a steady state would
    hot, plain = measure(hot_fan), measure(plain_fan)
    return {"hot20_p50_ms": hot["p50_ms"], "none_p50_ms": plain["p50_ms"], "ratio": hot["p50_ms"] / plain["p50_ms"]}


def _node_requests(client: FeedClient) -> dict[str, int]:
    return {n.id: n.requests_served for n in client.cluster_status().nodes}


BURST_POSTS_PER_S = 200  # per poster thread; two threads: 400 celebrity posts a second


def burst(client: FeedClient, target: str, users: int, hot_authors: list[str], seconds: float) -> dict[str, float]:
    """Ordinary users' read p99 quiet vs during a burst of hot users' posts, and writes per node.
    The burst is paced (400 posts/s, far above any real celebrity rate) rather than as fast as
    possible: unpaced, it measures how the two shared cores are split, not the hotspot. Both phases
    are one load over the same connections, the posters starting halfway: as two loads, each phase's
    new connections were spread over the router's workers by the kernel's hash (SO_REUSEPORT), and
    a phase whose connections landed on one worker measured that instead (seen 2026-12-06: one
    worker at 0.01 of a core in the loud phase only)."""
    wait_for_deliveries(client)
    stop, go = threading.Event(), threading.Event()
    posted = [0]
    burst_wall = [0.0]

    def hot_poster() -> None:
        go.wait()
        with FeedClient(target) as poster:
            i = 0
            started = time.perf_counter()
            while not stop.is_set():
                poster.post(hot_authors[i % len(hot_authors)], f"burst {i}")
                posted[0] += 1
                i += 1
                ahead = i / BURST_POSTS_PER_S - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)

    def start_burst() -> None:
        burst_wall[0] = time.time()
        go.set()

    before = _node_requests(client)
    threads = [threading.Thread(target=hot_poster) for _ in range(2)]
    for t in threads:
        t.start()
    timer = threading.Timer(seconds + 1.0, start_burst)  # the load's process starts in well under a second
    timer.start()
    try:
        load = run_load(target, "feed", 2 * seconds + 1.0, 1, 8, Mix(1.0, 0.0, 0.0), users)
    finally:
        timer.cancel()
        go.set()
        stop.set()
        for t in threads:
            t.join()
    ended = time.time()
    after = _node_requests(client)
    burst_at = burst_wall[0] - load["started_wall"][0]  # in the load's own offsets
    reads = list(zip(load["read_at"], load["read"], strict=True))
    quiet = summary([lat for at, lat in reads if 0.5 <= at < burst_at - 0.2])
    loud = summary([lat for at, lat in reads if at >= burst_at + 0.5])
    return {
        "quiet_read_p99_ms": quiet["p99_ms"],
        "burst_read_p99_ms": loud["p99_ms"],
        "p99_ratio": loud["p99_ms"] / quiet["p99_ms"],
        "hot_posts": float(posted[0]),
        "hot_posts_per_s": posted[0] / max(ended - burst_wall[0], 1e-9),
        **burst_spread(before, after),
    }


def burst_spread(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    deltas = [after[n] - before.get(n, 0) for n in after]
    mean = sum(deltas) / len(deltas)
    return {"node_requests_max_over_mean": max(deltas) / mean if mean else float("nan")}


def salted_write_spread(directory: Path, salt_buckets: int, hot_authors: list[str], posts: int) -> dict[str, float]:
    """A short separate cluster: hot posts only, to compare writes per node for a salt count. One copy
    of each partition: with three nodes and three copies every node holds every key, and placement
    (what salting spreads) could not show."""
    cluster = LocalCluster(write_cluster_file(directory, 1_000_000, salt_buckets, hot_authors, replication_factor=1))
    cluster.start(quiet=True)
    try:
        with FeedClient(cluster.config.routers[0].address, token=cluster.secret) as client:
            time.sleep(1.5)  # let the router pin the configured hot users
            before = {n.id: n.keys_by_family.get("posts", 0) for n in client.cluster_status().nodes}
            for i in range(posts):
                client.post(hot_authors[i % len(hot_authors)], f"salted {i}")
            after = {n.id: n.keys_by_family.get("posts", 0) for n in client.cluster_status().nodes}
    finally:
        cluster.stop(quiet=True)
    deltas = [after[n] - before.get(n, 0) for n in after]
    mean = sum(deltas) / len(deltas)
    return {"post_writes_per_node": deltas, "max_over_mean": max(deltas) / mean if mean else float("nan")}  # type: ignore[dict-item]


def rebalance(cluster: LocalCluster, client: FeedClient, users: int, seconds: float) -> dict[str, float]:
    """Adds a fourth node under read load: keys/s and MB/s moved, read latency during vs before."""
    target = cluster.config.routers[0].address
    before = summary(run_load(target, "feed", seconds, 1, 8, Mix(1.0, 0.0, 0.0), users)["read"])
    address = f"127.0.0.1:{_free_port()}"
    cluster.add_node("n4", address)
    during: dict[str, list[float]] = {}
    reader = threading.Thread(
        target=lambda: during.update(run_load(target, "feed", seconds, 1, 8, Mix(1.0, 0.0, 0.0), users))
    )
    started = time.perf_counter()
    reader.start()
    with FeedClient(target, token=cluster.secret) as admin:
        progress = list(
            admin_pb2_grpc.AdminStub(admin.calls).ChangeMembership(
                admin_pb2.ChangeMembershipRequest(
                    kind=admin_pb2.ChangeMembershipRequest.ADD, node_id="n4", address=address
                )
            )
        )
    last = progress[-1] if progress else None
    elapsed = time.perf_counter() - started
    reader.join()
    assert last is not None and last.phase == "DONE", last
    moving = summary(during.get("read", []))
    return {
        "keys_moved": float(last.keys_moved),
        "mb_moved": last.bytes_moved / 1e6,
        "seconds": elapsed,
        "keys_per_s": last.keys_moved / elapsed,
        "mb_per_s": last.bytes_moved / 1e6 / elapsed,
        "partitions_moved": float(last.partitions_moving),
        "read_p50_before_ms": before["p50_ms"],
        "read_p99_before_ms": before["p99_ms"],
        "read_p50_during_ms": moving["p50_ms"],
        "read_p99_during_ms": moving["p99_ms"],
    }


def node_figures(client: FeedClient) -> dict[str, object]:
    status = client.cluster_status()
    keys = {n.id: sum(n.keys_by_family.values()) for n in status.nodes}
    requests = {n.id: n.requests_served for n in status.nodes}
    mean_keys = sum(keys.values()) / len(keys)
    mean_requests = sum(requests.values()) / len(requests)
    return {
        "keys": keys,
        "requests": requests,
        "rss_mb": {n.id: n.rss_bytes / 2**20 for n in status.nodes},
        "keys_max_over_mean": max(keys.values()) / mean_keys if mean_keys else float("nan"),
        "requests_max_over_mean": max(requests.values()) / mean_requests if mean_requests else float("nan"),
        "router_rss_mb": status.router.rss_bytes / 2**20,
    }


def grow_node_entries(
    client: FeedClient, target_entries: int, data_dirs: dict[str, Path], pids: dict[str, int], batch: int = 50_000
) -> dict[str, float]:
    """Bulk-loads follows of fresh hot users until one node holds `target_entries` keys, then reads
    that node's RSS and LevelDB size: the memory and disk a node needs for a given amount of data.
    The RSS is split as the soak splits it: anonymous, and file-backed (LevelDB's table files, which
    it maps into memory; the kernel takes those pages back when memory is short)."""
    from bench.graphs import load
    from bench.processes import resident_bytes
    from node.metrics import directory_bytes

    started = time.perf_counter()
    round_ = 0
    while True:
        status = client.cluster_status()
        fullest = max(status.nodes, key=lambda n: sum(n.keys_by_family.values()))
        entries = sum(fullest.keys_by_family.values())
        if entries >= target_entries:
            break
        edges = ((f"filler{round_}x{i}", f"bulky{round_ % 20}") for i in range(500_000))
        load(client, edges, 500_000, f"filler round {round_} ({entries:,} entries on {fullest.id})", batch)
        round_ += 1
    split: dict[str, float] = {}
    if fullest.id in pids:
        anon, mapped = resident_bytes(pids[fullest.id])
        split = {"rss_anon_mb": anon / 2**20, "rss_file_mb": mapped / 2**20}
    return {
        "node": fullest.id,  # type: ignore[dict-item]
        "entries": float(entries),
        "rss_mb": fullest.rss_bytes / 2**20,
        **split,
        "disk_bytes": float(directory_bytes(data_dirs[fullest.id])),  # its LevelDB directory
        "seconds": time.perf_counter() - started,
    }
