"""python -m bench.grpc_options: what gRPC and event-loop options buy a timeline read, A/B in one run.

Each variant restarts the same bench cluster (RF=1, same data) with `FEEDRING_TUNING` set (see
common/runtime.py), then measures read-only closed-loop QPS and single-read p50 from the same client
processes as `make bench`. Variants run in rounds, the order reversed every other round, and each
figure is a ratio to the defaults measured in the same round, so a slow minute of this shared machine
hits both sides. The JSON goes to bench/results/grpc-options-<stamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import graphs, scenarios
from bench.harness import Mix, run_load
from bench.stats import summary
from client import FeedClient
from ops.local_cluster import LocalCluster

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {
    "defaults": "",
    "uvloop": "uvloop",
    "gc frozen, fewer collections": "gc",
    "optimization_target=latency": "opt_latency",
    "optimization_target=throughput": "opt_throughput",
}


def measure(target: str, seconds: float, users: int) -> dict[str, float]:
    run_load(target, "feed", 1.0, 2, 16, Mix(1, 0, 0), users)  # warm channels and caches
    loaded = summary(run_load(target, "feed", seconds, 2, 16, Mix(1, 0, 0), users)["read"], seconds)
    single = summary(run_load(target, "feed", seconds / 2, 1, 1, Mix(1, 0, 0), users)["read"])
    return {"read_qps": loaded["qps"], "read_p99_ms": loaded["p99_ms"], "single_p50_ms": single["p50_ms"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_options", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every variant (default 3)")
    parser.add_argument("--seconds", type=float, default=8.0, help="read-only phase length (default 8)")
    parser.add_argument("--users", type=int, default=5_000, help="synthetic users (default 5000)")
    parser.add_argument("--only", help="comma list of FEEDRING_TUNING values to compare with the defaults")
    args = parser.parse_args(argv)
    variants = dict(VARIANTS)
    if args.only:
        keep = set(args.only.split(","))
        variants = {name: flag for name, flag in variants.items() if not flag or flag in keep}

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = RESULTS / f"grpc-options-{stamp}"
    cluster = LocalCluster(scenarios.write_cluster_file(run_dir, 5_000, 8, []))
    cluster.start(quiet=True)
    target = cluster.config.routers[0].address
    try:
        with FeedClient(target, timeout_s=120, token=cluster.secret) as client:
            edges = graphs.synthetic_edges(args.users, 7)
            graphs.load(client, edges, len(edges), f"synthetic graph ({args.users} users)")
            for i in range(300):
                client.post(f"u{i}", f"seed post {i}")
            scenarios.wait_for_deliveries(client)
    finally:
        cluster.stop(quiet=True)

    rounds: list[dict[str, dict[str, float]]] = []
    for r in range(args.rounds):
        order = list(variants.items()) if r % 2 == 0 else list(reversed(variants.items()))
        figures: dict[str, dict[str, float]] = {}
        for name, flag in order:
            os.environ["FEEDRING_TUNING"] = flag
            cluster.start(quiet=True)
            try:
                time.sleep(1.0)
                figures[name] = measure(target, args.seconds, args.users)
            finally:
                cluster.stop(quiet=True)
            print(f"round {r + 1} {name:32} {figures[name]}", flush=True)
        rounds.append(figures)
    os.environ.pop("FEEDRING_TUNING", None)

    table = {}
    for name in variants:
        table[name] = {
            "read_qps_x": statistics.median(f[name]["read_qps"] / f["defaults"]["read_qps"] for f in rounds),
            "single_p50_x": statistics.median(
                f[name]["single_p50_ms"] / f["defaults"]["single_p50_ms"] for f in rounds
            ),
            "read_qps": statistics.median(f[name]["read_qps"] for f in rounds),
            "single_p50_ms": statistics.median(f[name]["single_p50_ms"] for f in rounds),
        }
    print(f"\n{'variant':32} {'read QPS':>9} {'vs defaults':>11} {'single p50':>11} {'vs defaults':>11}")
    for name, row in table.items():
        print(
            f"{name:32} {row['read_qps']:9.0f} {row['read_qps_x']:10.2f}x "
            f"{row['single_p50_ms']:9.2f}ms {row['single_p50_x']:10.2f}x"
        )
    out = RESULTS / f"grpc-options-{stamp}.json"
    out.write_text(json.dumps({"date": stamp, "rounds": rounds, "median_ratios": table}, indent=2))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
