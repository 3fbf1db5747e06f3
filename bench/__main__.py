"""python -m bench [--quick | --smoke]: feedring's benchmark, with baselines measured in the same run.

It starts its own cluster (3 nodes, a router with 2 workers) on free ports under bench/results/,
loads the Reed College graph and a synthetic power-law graph with celebrity-scale follower counts,
runs a read-heavy mixed workload from several client processes, then the hot-user, fan-out,
rebalancing, replication and inactive-reader scenarios, and writes a table, bench/results/<stamp>.json and <stamp>.png.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    fanout_load,
    floors,
    graphs,
    inactive_readers,
    paired,
    replication,
    report,
    scenarios,
    soak,
    visibility,
    watch_latency,
)
from bench.baselines import plyvel_batched_puts_per_second
from bench.harness import Mix, run_load, start_echo_server
from bench.processes import server_pids
from bench.sizes import FULL, QUICK, SMOKE, Sizes
from bench.stats import summary
from client import FeedClient
from ops.local_cluster import LocalCluster

RESULTS = Path(__file__).resolve().parent / "results"
VISIBLE = (("10", 10), ("200", 200))  # the visibility probes: (label, followers)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark feedring on this machine. Every figure comes with a same-run baseline.",
        epilog="examples:\n  make bench              # the full run (20-30 minutes)\n"
        "  make bench-quick        # about 6 minutes\n"
        "  make bench-stress       # python -m bench --stress: the post rate the cluster sustains\n"
        "  make soak SECONDS=3600  # python -m bench --soak 3600: an hour under load, nothing may grow without bound\n"
        "  python -m bench --quick --seconds 5 --mix 0.8,0.15,0.05",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small graphs and short phases (about 6 minutes)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the smallest run that still produces every figure (the test suite's; the figures mean nothing)",
    )
    parser.add_argument("--seconds", type=float, help="length of each load phase (default 20, quick 6, smoke 2)")
    parser.add_argument("--processes", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight per client process (default 16)")
    parser.add_argument("--mix", default="0.90,0.08,0.02", help="read,post,follow shares (default 0.90,0.08,0.02)")
    parser.add_argument("--users", type=int, help="synthetic users (default 50000, quick 5000, smoke 2000)")
    parser.add_argument("--seed", type=int, default=7, help="graph seed (default 7)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib needed)")
    parser.add_argument(
        "--node-entries",
        type=int,
        help="before rebalancing, bulk-load until one node holds this many keys and report its RSS "
        "(default 5000000, quick 0 = skip)",
    )
    parser.add_argument(
        "--stress",
        action="store_true",
        help="only load the graphs and run the stress phase (the post rate the cluster sustains)",
    )
    parser.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="only load the graphs and run the mixed workload this long at 70%% of the stress capacity, "
        "sampling memory, descriptors, disk, lag and read p99 every 10 s; exits 1 if any grows without bound",
    )
    parser.add_argument(
        "--soak-rate",
        type=float,
        metavar="POSTS_PER_S",
        help="the soak's post rate (default: 70%% of the capacity a stress phase measures first)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write results (default bench/results)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.no_plot and importlib.util.find_spec("matplotlib") is None:
        # Said now, not after a 20-minute run (whose JSON would still be written, without its plot).
        print(
            "the plot needs matplotlib: pip install -e '.[bench]' (make bench does), or pass --no-plot",
            file=sys.stderr,
        )
        return 2
    sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
    seconds = args.seconds or sizes.seconds
    users = args.users or sizes.users
    read, post, follow = (float(x) for x in args.mix.split(","))
    mix = Mix(read, post, follow)
    # Follower-count classes; those above the hot threshold are hot (merged at read, not fanned out).
    classes = sizes.classes
    threshold = sizes.hot_threshold
    hot_pinned = [f"pinned{i}" for i in range(20)]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = args.out / f"run-{stamp}"
    results: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {_cores()} cores, {_memory_gib():.0f} GiB, "
        f"Python {platform.python_version()}",
        "mode": sizes.name,
        "settings": {
            "seconds": seconds,
            "processes": args.processes,
            "concurrency": args.concurrency,
            "mix": [read, post, follow],
            "users": users,
            "hot_threshold": threshold,
        },
    }
    started = time.perf_counter()

    if not args.soak:  # a soak measures the cluster against itself over time: no baselines
        print("baselines: raw plyvel batched puts, store floors, bare gRPC echo, two-hop bare relay ...", flush=True)
        results["plyvel_puts_per_s"] = plyvel_batched_puts_per_second(sizes.plyvel_puts)
        # LevelDB's default (snappy blocks), the baseline of every run before 2026-12-06 12:00.
        results["plyvel_puts_per_s_snappy"] = plyvel_batched_puts_per_second(sizes.plyvel_puts, compression="snappy")
        # A node's store work per inbox entry, apart from gRPC and the event loop (bench/floors.py).
        results["store_floors"] = floors.store_floors(posts=sizes.floor_posts)
        echo_process, echo_target = start_echo_server()
        try:
            echo = run_load(echo_target, "echo", seconds, args.processes, args.concurrency)
            results["echo"] = summary(echo["echo"], seconds)
            results["echo_single"] = summary(run_load(echo_target, "echo", min(seconds, 5), 1, 1)["echo"])
        finally:
            echo_process.terminate()
        # Two bare hops (client -> relay -> echo), in rounds alternating with the echo: what a router ->
        # node read costs with no feedring code in it, the floor of the read targets (bench/floors.py).
        results["relay_floor"] = floors.relay_floor(rounds=sizes.relay_rounds, seconds=sizes.relay_seconds)
    else:
        hot_pinned = []  # the shipped configuration: no pinned hot users

    cluster = LocalCluster(scenarios.write_cluster_file(run_dir, threshold, 8, hot_pinned, metrics=bool(args.soak)))
    cluster.start(quiet=True)
    try:
        with FeedClient(cluster.config.routers[0].address, timeout_s=120, token=cluster.secret) as client:
            target = cluster.config.routers[0].address
            rss_empty = client.cluster_status().router.rss_bytes
            print("loading graphs ...", flush=True)
            reed = graphs.reed_edges()
            synthetic = graphs.synthetic_edges(users, args.seed)
            load_rates = {
                "reed": graphs.load(client, reed, len(reed), "Reed College graph"),
                "synthetic": graphs.load(client, synthetic, len(synthetic), f"synthetic graph ({users} users)"),
            }
            only_load = args.stress or args.soak
            for label, followers in {} if only_load else classes.items():
                load_rates[f"c{label}"] = graphs.load(
                    client, graphs.celebrity_edges(f"c{followers}", followers), followers, f"{label}-follower author"
                )
            for label, n in () if only_load else VISIBLE:  # the visibility probes' authors
                fans = ((f"vis{label}-fan{i}", f"vis{label}") for i in range(n))
                graphs.load(client, fans, n, f"{label}-follower author")
            # Four authors just below the hot threshold, for the fan-out delivery rate.
            fanout_followers = sizes.fanout_followers
            fanout_authors = [f"fanout{i}" for i in range(4)]
            graphs.load(
                client,
                ((f"ff{i}", author) for author in fanout_authors for i in range(fanout_followers)),
                4 * fanout_followers,
                "fan-out authors",
            )
            results["graph"] = {
                "reed_edges": len(reed),
                "synthetic_edges": len(synthetic),
                "celebrity_followers": classes,
                "load_edges_per_s": load_rates,
            }
            # Give the synthetic users something to read.
            for i in range(300):
                client.post(f"u{i}", f"seed post {i}")
            # The big classes' moves to merge-at-read (a 1M-follower author's takes minutes) finish first.
            results["hot_transitions_s"] = scenarios.wait_for_hot_transitions(client)
            if args.stress:
                results["stress"] = _stress(cluster, client, users, sizes)
                return _finish_stress(results, started, args.out, stamp)
            if args.soak:
                post_rate = args.soak_rate
                if post_rate is None:
                    results["stress"] = _stress(cluster, client, users, sizes)
                    post_rate = soak.LOAD_SHARE * float(results["stress"]["capacity_posts_per_s"])  # type: ignore[index]
                results["soak"] = soak.soak(cluster, client, users, args.soak, max(post_rate, 1.0))
                return _finish_soak(results, started, args.out, stamp, not args.no_plot)

            print("mixed workload ...", flush=True)
            load = run_load(target, "feed", seconds, args.processes, args.concurrency, mix, users)
            results["workload"] = {
                op: summary(load[op], seconds) for op in ("read", "post", "follow", "error") if load.get(op)
            }
            rss_after_workload = client.cluster_status().router.rss_bytes
            # The closed loop posts faster than fan-out delivers: reads alone are measured once drained.
            drained: dict[str, float] = {"after_closed_loop_mixed": scenarios.wait_for_deliveries(client)}
            results["drain_s"] = drained
            results["read_only"] = summary(
                run_load(target, "feed", seconds, args.processes, args.concurrency, Mix(1, 0, 0), users)["read"],
                seconds,
            )
            results["read_single"] = summary(
                run_load(target, "feed", min(seconds, 5), 1, 1, Mix(1, 0, 0), users)["read"]
            )
            # The same reads from a map-aware client: each to a node holding the reader's inbox (one hop).
            results["read_only_direct"] = summary(
                run_load(target, "feed", seconds, args.processes, args.concurrency, Mix(1, 0, 0), users, direct=True)[
                    "read"
                ],
                seconds,
            )
            results["read_single_direct"] = summary(
                run_load(target, "feed", min(seconds, 5), 1, 1, Mix(1, 0, 0), users, direct=True)["read"]
            )
            # The same reads and the echo in alternating rounds: the ratios the read targets use.
            for name, direct in (("router_vs_echo", False), ("direct_vs_echo", True)):
                results[name] = paired.reads_against_echo(
                    target, users, sizes.relay_rounds, sizes.relay_seconds, args.processes, args.concurrency, direct
                )
            # Most synthetic readers follow a hot user (a read-time merge); the common case apart.
            plain = graphs.readers_following_no_hot_user(synthetic, threshold)
            results["plain_readers"] = len(plain)
            results["read_only_plain"] = summary(
                run_load(target, "feed", seconds, args.processes, args.concurrency, Mix(1, 0, 0), users, plain, 0, 1.0)[
                    "read"
                ],
                seconds,
            )
            results["read_single_plain"] = summary(
                run_load(target, "feed", min(seconds, 5), 1, 1, Mix(1, 0, 0), users, plain, 0, 1.0)["read"]
            )

            # The closed loop above measures throughput (its latency is calls in flight / QPS); an
            # open loop at half that rate measures what a reader waits while fan-out runs beside.
            closed_ops = sum(results["workload"][op]["qps"] for op in ("read", "post", "follow") if op in load)
            rate = max(0.5 * closed_ops, 20.0)
            print(f"open-loop mixed workload at {rate:.0f} ops/s, then its reads alone ...", flush=True)
            results["mixed_open"] = fanout_load.open_loop_mixed(cluster, client, users, seconds, rate, mix, 2)
            drained["after_open_loop_mixed"] = scenarios.wait_for_deliveries(client)
            results["reads_open"] = fanout_load.open_loop_mixed(
                cluster, client, users, seconds, rate * mix.read, Mix(1, 0, 0), 2
            )
            # The same mixed open loop as the map-aware client (the default FeedClient) sends it: one hop.
            results["mixed_open_direct"] = fanout_load.open_loop_mixed(
                cluster, client, users, seconds, rate, mix, 2, direct=True
            )
            drained["after_open_loop_mixed_direct"] = scenarios.wait_for_deliveries(client)

            print("post ack by follower class, delivery ...", flush=True)
            results["post_ack"] = scenarios.post_ack_by_class(client, classes, sizes.samples)
            # Lag: one author and one of its followers; rate: 40 posts by the four fan-out authors.
            results["delivery"] = scenarios.delivery(
                client,
                cluster,
                "fanout0",
                "ff0",
                fanout_authors * 10,
                fanout_followers,
                sizes.delivery_posts_per_author,
            )
            # A post visible in every follower's timeline: a 10-follower and a 200-follower author,
            # each follower polling its own timeline (bench/visibility.py); the earlier method beside.
            scenarios.wait_for_deliveries(client)
            visible_to = {label: (f"vis{label}", [f"vis{label}-fan{i}" for i in range(n)]) for label, n in VISIBLE}
            results["visible"] = {
                label: visibility.by_followers(target, cluster.secret, author, fans, min(sizes.samples, 20))
                for label, (author, fans) in visible_to.items()
            }
            results["visible_thread_pool"] = {
                label: visibility.thread_pool(client, author, fans, min(sizes.samples, 20))
                for label, (author, fans) in visible_to.items()
            }

            print("watch streams: post ack -> seen by open watchers ...", flush=True)
            results["watch"] = watch_latency.watch_latency(
                cluster, client, hot_pinned[-1], sizes.watchers, sizes.watch_posts
            )

            results["stress"] = _stress(cluster, client, users, sizes)

            print("hot users ...", flush=True)
            for i, hot in enumerate(hot_pinned):
                client.follow("hotfan", hot)
                client.follow("plainfan", f"plain{i}")
                for j in range(10):
                    client.post(hot, f"hot {i}.{j}")
                    client.post(f"plain{i}", f"plain {i}.{j}")
            time.sleep(0.5)
            results["hot_read"] = scenarios.timeline_read_with_hot_followees(
                client, "hotfan", "plainfan", sizes.hot_reads
            )
            results["burst"] = scenarios.burst(client, target, users, hot_pinned, min(seconds, sizes.phase_s))
            results["nodes"] = scenarios.node_figures(client)
            # Memory must not grow with users and posts: compare after all the phases that added some.
            results["router_rss_mb"] = {
                "empty": rss_empty / 2**20,
                "after_workload": rss_after_workload / 2**20,
                "after_all_phases": client.cluster_status().router.rss_bytes / 2**20,
            }

            print("salting spread (separate short clusters, S=8 and S=1) ...", flush=True)
            results["salting"] = {
                f"S={s}": scenarios.salted_write_spread(run_dir / f"salt{s}", s, hot_pinned[:2], sizes.salting_posts)
                for s in (8, 1)
            }

            node_entries = args.node_entries if args.node_entries is not None else sizes.node_entries
            if node_entries:
                print(f"growing one node to {node_entries:,} entries for the memory figure ...", flush=True)
                results["big_node"] = scenarios.grow_node_entries(
                    client, node_entries, {n.id: n.data_dir for n in cluster.config.nodes}, server_pids(cluster)
                )

            print("rebalancing: adding a fourth node under read load ...", flush=True)
            results["rebalance"] = scenarios.rebalance(cluster, client, users, min(seconds, sizes.phase_s))
    finally:
        cluster.stop(quiet=True)

    print("replication: the same load at replication_factor 1 and 3, and a restarted replica's catch-up ...")
    results["replication"] = replication.replication_cost(
        run_dir / "replication", min(users, 5_000), min(seconds, 10), sizes
    )

    print("inactive readers: fan-out skipped for readers who went away, and their first read back ...")
    results["inactive"] = inactive_readers.inactive_readers(
        run_dir / "inactive", min(users, 5_000 if sizes is FULL else 2_000), args.seed, sizes
    )

    results["elapsed_s"] = time.perf_counter() - started
    results["targets"] = report.targets(results)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"{stamp}.json"
    json_path.write_text(json.dumps(results, indent=1, default=str))
    report.print_table(results)
    if not args.no_plot:
        print(f"plot: {report.plot(results, args.out / f'{stamp}.png')}")
    print(f"results: {json_path}")
    return 0


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def _memory_gib() -> float:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) / 2**20


def _stress(cluster: LocalCluster, client: FeedClient, users: int, sizes: Sizes) -> dict[str, object]:
    print("stress: raising the post rate until fan-out lag p99 passes 5 s ...", flush=True)
    scenarios.wait_for_deliveries(client)
    return fanout_load.stress(
        cluster,
        client,
        users,
        step_s=sizes.stress_step_s,
        read_rate=sizes.stress_read_rate,
        post_rates=list(sizes.stress_post_rates),
        processes=2,
    )


def _finish_stress(results: dict[str, object], started: float, out: Path, stamp: str) -> int:
    results["elapsed_s"] = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{stamp}-stress.json"
    json_path.write_text(json.dumps(results, indent=1, default=str))
    report.print_stress(results)
    print(f"results: {json_path}")
    return 0


def _finish_soak(results: dict[str, object], started: float, out: Path, stamp: str, plot: bool) -> int:
    results["elapsed_s"] = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{stamp}-soak.json"
    json_path.write_text(json.dumps(results, indent=1, default=str))
    report.print_soak(results)
    if plot:
        print(f"plot: {report.plot_soak(results, out / f'{stamp}-soak.png')}")
    print(f"results: {json_path}")
    return 0 if results["soak"]["passed"] else 1  # type: ignore[index]


if __name__ == "__main__":
    sys.exit(main())
