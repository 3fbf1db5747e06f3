"""What replicas cost, and how fast a restarted replica catches up: two short clusters side by side.

The same graph and the same load run on a cluster with one copy of each partition and on one with
three (the shipped setting), one after the other on this machine: timeline read QPS under a
read-only load (through the router, and from a map-aware client straight to the nodes), post
acknowledgement p50/p99 for a 1,000-follower author, and the fan-out delivery
rate (follower inboxes reached per second, and the replica writes behind them). Then, on the
three-copy cluster, a node is killed while a mixed load runs for `down_s` seconds and restarted: the
catch-up time is from its restart until its peers hold no hints for it (but those of forwards still
on their way) and it serves reads again.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench import graphs, scenarios
from bench.harness import Mix, run_load
from bench.sizes import Sizes
from bench.stats import summary
from client import FeedClient
from ops.local_cluster import LocalCluster

__all__ = ["replication_cost"]


def replication_cost(run_dir: Path, users: int, seconds: float, sizes: Sizes) -> dict[str, object]:
    out: dict[str, object] = {}
    for rf in (1, 3):
        print(f"  replication_factor = {rf} ...", flush=True)
        down_s = sizes.replication_down_s if rf > 1 else 0.0
        out[f"rf{rf}"] = _one_cluster(run_dir / f"rf{rf}", rf, users, seconds, down_s, sizes)
    one, three = out["rf1"], out["rf3"]
    assert isinstance(one, dict) and isinstance(three, dict)
    out["rf3_over_rf1"] = {
        key: three[key] / one[key] if one.get(key) else float("nan")  # type: ignore[operator]
        for key in ("read_qps", "post_ack_p50_ms", "post_ack_p99_ms", "inboxes_per_s")
    }
    out["rf3_over_rf1"]["read_qps_direct"] = (  # type: ignore[index]
        three["read_only_direct"]["qps"] / one["read_only_direct"]["qps"]  # type: ignore[index]
    )
    return out


def _one_cluster(
    directory: Path, rf: int, users: int, seconds: float, down_s: float, sizes: Sizes
) -> dict[str, object]:
    cluster = LocalCluster(scenarios.write_cluster_file(directory, 1_000_000, 8, [], replication_factor=rf))
    cluster.start(quiet=True)
    try:
        target = cluster.config.routers[0].address
        with FeedClient(target, timeout_s=120, token=cluster.secret) as client:
            graphs.load(client, graphs.synthetic_edges(users, 7), users * 20, f"synthetic graph, RF={rf}")
            followers = 1_000
            graphs.load(
                client, ((f"rf-fan{i}", "rf-author") for i in range(followers)), followers, "1K-follower author"
            )
            fanout_authors = [f"rf-fanout{i}" for i in range(4)]
            each = sizes.replication_fanout_followers
            graphs.load(
                client, ((f"rf-ff{i}", a) for a in fanout_authors for i in range(each)), 4 * each, "fan-out authors"
            )
            for i in range(200):
                client.post(f"u{i}", f"seed post {i}")
            scenarios.wait_for_deliveries(client)

            reads = summary(run_load(target, "feed", seconds, 2, 16, Mix(1, 0, 0), users)["read"], seconds)
            direct = summary(
                run_load(target, "feed", seconds, 2, 16, Mix(1, 0, 0), users, direct=True)["read"], seconds
            )
            acks = []
            for i in range(sizes.samples):
                started = time.perf_counter()
                client.post("rf-author", f"ack probe {i}")
                acks.append(time.perf_counter() - started)
            ack = summary(acks)
            delivery = scenarios.delivery(client, cluster, "rf-author", "rf-fan0", fanout_authors * 5, each, 10)
            figures: dict[str, object] = {
                "read_only_direct": direct,  # a map-aware client's reads (one hop)
                "read_qps": reads["qps"],
                "read_p50_ms": reads["p50_ms"],
                "read_p99_ms": reads["p99_ms"],
                "post_ack_p50_ms": ack["p50_ms"],
                "post_ack_p99_ms": ack["p99_ms"],
                "delivery_lag_p50_ms": delivery["lag_p50_ms"],
                "delivery_lag_p99_ms": delivery["lag_p99_ms"],
                # Each follower's inbox is written on `rf` replicas.
                "replica_inbox_writes_per_s": delivery["replica_writes_per_s"],
                "inboxes_per_s": delivery["inbox_entries_per_s"],
                "node_cpu_us_per_entry": delivery["node_cpu_us_per_entry"],
            }
            if down_s:
                figures.update(_catch_up(cluster, client, target, users, down_s))
            return figures
    finally:
        cluster.stop(quiet=True)


def _catch_up(cluster: LocalCluster, client: FeedClient, target: str, users: int, down_s: float) -> dict[str, float]:
    """Kills n2 under a mixed load for `down_s`, restarts it, and times its catch-up."""
    cluster.kill("n2")
    load = run_load(target, "feed", down_s, 2, 8, Mix(0.6, 0.3, 0.1), users)
    failed = len(load.get("error", []))
    held = sum(n.replication.hints for n in client.cluster_status().nodes if n.healthy)
    restarted = time.perf_counter()
    cluster.restart("n2")
    while True:
        nodes = client.cluster_status().nodes
        n2 = next(n for n in nodes if n.id == "n2")
        # Hints for forwards still on their way to n2 are writes arriving, not ones it missed.
        missed = sum(
            n.replication.hints_by_target.get("n2", 0) - n.replication.in_flight_hints_by_target.get("n2", 0)
            for n in nodes
            if n.healthy
        )
        if n2.healthy and not n2.replication.catching_up and not missed:
            break
        if time.perf_counter() - restarted > 300:
            break
        time.sleep(0.1)
    return {
        "down_s": down_s,
        "ops_while_down": float(sum(len(load.get(op, [])) for op in ("read", "post", "follow"))),
        "failed_while_down": float(failed),
        "hints_held_at_restart": float(held),
        "catch_up_s": time.perf_counter() - restarted,
    }
