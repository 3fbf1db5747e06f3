"""The benchmark's output: targets met or not, a table, and a plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["targets", "print_table", "print_stress", "plot"]


def _get(results: dict[str, Any], *path: str) -> float:
    value: Any = results
    for key in path:
        value = value[key]
    return float(value)


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 5 with its measured ratio; every ratio is against this run's baseline."""
    top = list(r["post_ack"])[-1]
    # Read ratios from rounds alternating with the echo where the run has them (bench/paired.py); runs
    # before 2026-12-06 23:40 (map-aware) and 2026-12-07 00:30 (router) divided by the echo measured at
    # the start.
    routed = r.get("router_vs_echo")
    rows = [
        (
            "timeline read QPS (read-only load) >= 0.5x echo QPS",
            routed["qps_over_echo"] if routed else _get(r, "read_only", "qps") / _get(r, "echo", "qps"),
            0.5,
            ">=",
        ),
        (
            "single timeline read p50 <= 2.0x echo p50",
            routed["single_p50_over_echo"]
            if routed
            else _get(r, "read_single", "p50_ms") / _get(r, "echo_single", "p50_ms"),
            2.0,
            "<=",
        ),
    ]
    if "store_floors" in r:
        rows.append(
            (
                "store only: inbox entries/s >= 0.4x raw plyvel batched puts (bench.floors)",
                _get(r, "store_floors", "insert_inbox_over_plyvel"),
                0.4,
                ">=",
            )
        )
    if "replication" in r:
        rows.append(
            (
                "whole delivery at RF=1: entries/s >= 0.15x raw plyvel batched puts",
                _get(r, "replication", "rf1", "inboxes_per_s") / _get(r, "plyvel_puts_per_s"),
                0.15,
                ">=",
            )
        )
    if "node_cpu_us_per_entry" in r.get("delivery", {}):
        rows += [
            (
                "whole delivery at RF=3: follower inboxes reached/s >= 0.08x raw plyvel batched puts",
                _get(r, "delivery", "inbox_entries_per_s") / _get(r, "plyvel_puts_per_s"),
                0.08,
                ">=",
            ),
            (
                "node CPU per delivered entry (one replica's write) <= 12 us",
                _get(r, "delivery", "node_cpu_us_per_entry"),
                12,
                "<=",
            ),
        ]
    if "capacity_posts_per_s" in r.get("stress", {}):
        rows.append(
            (
                "stress: posts/s sustained beside the reads with lag p99 <= 5 s >= 45",
                _get(r, "stress", "capacity_posts_per_s"),
                45,
                ">=",
            )
        )
    if "workload" in r:
        rows.append(
            (
                "mixed workload (closed loop): timeline read p99 <= 100 ms",
                _get(r, "workload", "read", "p99_ms"),
                100,
                "<=",
            )
        )
    for label, p50, p99 in (("10", 5, 15), ("200", 10, 30)):
        if label in r.get("visible", {}):
            rows += [
                (
                    f"post visible in all {label} followers' timelines: p50 <= {p50} ms",
                    _get(r, "visible", label, "p50_ms"),
                    p50,
                    "<=",
                ),
                (
                    f"post visible in all {label} followers' timelines: p99 <= {p99} ms",
                    _get(r, "visible", label, "p99_ms"),
                    p99,
                    "<=",
                ),
            ]
    if "read_only_direct" in r:
        paired = r.get("direct_vs_echo")
        rows += [
            (
                "map-aware client: single timeline read p50 <= 1.3x echo p50",
                paired["single_p50_over_echo"]
                if paired
                else _get(r, "read_single_direct", "p50_ms") / _get(r, "echo_single", "p50_ms"),
                1.3,
                "<=",
            ),
            (
                "map-aware client: read-only QPS >= 0.6x echo QPS",
                paired["qps_over_echo"] if paired else _get(r, "read_only_direct", "qps") / _get(r, "echo", "qps"),
                0.6,
                ">=",
            ),
        ]
    if "replication" in r and "read_only_direct" in r.get("replication", {}).get("rf3", {}):
        rows.append(
            (
                "map-aware read QPS at RF=3 >= 0.9x at RF=1",
                _get(r, "replication", "rf3", "read_only_direct", "qps")
                / _get(r, "replication", "rf1", "read_only_direct", "qps"),
                0.9,
                ">=",
            )
        )

    if "mixed_open" in r:
        rows += [
            ("open-loop mixed workload: timeline read p99 <= 50 ms", _get(r, "mixed_open", "read", "p99_ms"), 50, "<="),
            (
                "open-loop mixed workload: fan-out lag p99 <= 5 s",
                _get(r, "mixed_open", "fanout", "lag_p99_ms"),
                5000,
                "<=",
            ),
            ("open-loop mixed workload: post ack p99 <= 20 ms", _get(r, "mixed_open", "post", "p99_ms"), 20, "<="),
        ]
    rows += [
        (
            f"post ack of a {top}-follower (hot) user <= 1.5x a 10-follower user",
            _get(r, "post_ack", top, "p50_ms") / _get(r, "post_ack", "10", "p50_ms"),
            1.5,
            "<=",
        ),
        ("timeline read following 20 hot users <= 2x following none", _get(r, "hot_read", "ratio"), 2.0, "<="),
        ("ordinary read p99 during a hot-post burst <= 1.5x quiet", _get(r, "burst", "p99_ratio"), 1.5, "<="),
        (
            "router RSS after every later phase <= 1.2x after the first workload",
            _get(r, "router_rss_mb", "after_all_phases") / _get(r, "router_rss_mb", "after_workload"),
            1.2,
            "<=",
        ),
    ]
    out = []
    for name, value, bound, op in rows:
        met = value >= bound if op == ">=" else value <= bound
        out.append({"target": name, "measured": round(value, 3), "bound": bound, "met": met})
    if "big_node" in r:
        node_mb, node_keys = r["big_node"]["rss_mb"], int(r["big_node"]["entries"])
    else:
        node_mb, node_keys = max(r["nodes"]["rss_mb"].values()), max(r["nodes"]["keys"].values())
    out.append(
        {
            "target": "a node holding 5 million entries stays under 300 MB RSS",
            "measured": f"{node_mb:.0f} MB with {node_keys:,} entries"
            + (
                f" ({r['big_node']['rss_anon_mb']:.0f} anonymous, {r['big_node']['rss_file_mb']:.0f} mapped tables)"
                if "rss_anon_mb" in r.get("big_node", {})
                else ""
            ),
            "bound": 300,
            "met": None if node_keys < 5_000_000 else node_mb < 300,
        }
    )
    return out


def _replication_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """The cost of three copies against one, from bench/replication.py (same load, same machine)."""
    rep = r.get("replication")
    if not rep:
        return []
    one, three, ratio = rep["rf1"], rep["rf3"], rep["rf3_over_rf1"]
    rows = [
        (
            "RF=1 vs RF=3: read-only timeline QPS, through the router",
            f"{one['read_qps']:,.0f} vs {three['read_qps']:,.0f} ({ratio['read_qps']:.2f}x)",
        ),
        (
            "RF=1 vs RF=3: read-only timeline QPS, map-aware client",
            f"{one['read_only_direct']['qps']:,.0f} vs {three['read_only_direct']['qps']:,.0f} "
            f"({ratio.get('read_qps_direct', float('nan')):.2f}x)",
        ),
        (
            "RF=1 vs RF=3: post ack p50 / p99, 1K followers",
            f"{one['post_ack_p50_ms']:.1f} / {one['post_ack_p99_ms']:.1f} vs "
            f"{three['post_ack_p50_ms']:.1f} / {three['post_ack_p99_ms']:.1f} ms",
        ),
        (
            "RF=1 vs RF=3: follower inboxes reached/s (replica writes/s)",
            f"{one['inboxes_per_s']:,.0f} vs {three['inboxes_per_s']:,.0f} "
            f"({three['replica_inbox_writes_per_s']:,.0f}) ({ratio['inboxes_per_s']:.2f}x)",
        ),
    ]
    if "catch_up_s" in three:
        rows.append(
            (
                f"RF=3: node killed for {three['down_s']:.0f} s under load, then restarted",
                f"{three['failed_while_down']:.0f} of {three['ops_while_down']:.0f} ops failed; "
                f"{three['hints_held_at_restart']:,.0f} hints; caught up {three['catch_up_s']:.1f} s after restart",
            )
        )
    return rows


def _inactive_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """Readers who went away (bench/inactive_readers.py): the skip's saving, the return's cost."""
    a = r.get("inactive")
    if not a:
        return []
    every, skip = a["all_active"], a["inactive_skipped"]
    rows = [
        (
            f"inactive readers ({a['inactive_share']:.0%} of {a['readers']:,}): inbox entries written per post "
            "(all replicas), all active vs skipping",
            f"{every['entries_per_post']:,.1f} vs {skip['entries_per_post']:,.1f} ({a['entries_ratio']:.2f}x), "
            f"{skip['skipped_per_post']:,.1f} skipped",
        ),
        (
            "  delivery: posts/s until every inbox is written, all active vs skipping",
            f"{every['posts_per_s']:,.1f} vs {skip['posts_per_s']:,.1f} ({a['delivery_speedup']:.2f}x)",
        ),
    ]
    ordinary = a["ordinary_read"]
    for label, first in a["returning_first_read"].items():
        rows.append(
            (
                f"  returning reader's first read, {label.replace('_', ' ')} authors: p50 / p99 vs ordinary read",
                f"{first['p50_ms']:.1f} / {first['p99_ms']:.1f} ms vs {ordinary['p50_ms']:.1f} / "
                f"{ordinary['p99_ms']:.1f} ms",
            )
        )
    return rows


def _page_floor_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """The Feed API answering a fixed page (bench/floors.py), and what the node's own work per read
    adds over it: the paired map-aware ratios over the page floor's (both are medians of x / echo)."""
    floor = r["relay_floor"]
    rows = [
        (
            "the Feed API answering a fixed 20-post page / echo (a one-hop read's wire and guards): p50, QPS",
            f"{floor['page_p50_over_echo']:.2f}x, {floor['page_qps_over_echo']:.2f}x",
        )
    ]
    spread = floor.get("page_spread_qps_over_echo")  # runs before 2026-12-07 05:46 (994e5e6) have none
    if spread:
        rows.append(
            (
                "  the same page from three servers, reads spread over them as over a 3-node cluster: QPS",
                f"{spread:.2f}x",
            )
        )
    if "direct_vs_echo" in r:
        paired = r["direct_vs_echo"]
        rows.append(
            (
                "  map-aware read / that floor (the node's own work per read): p50, QPS"
                + (" (QPS over the three servers' floor)" if spread else ""),
                f"{paired['single_p50_over_echo'] / floor['page_p50_over_echo']:.2f}x, "
                f"{paired['qps_over_echo'] / (spread or floor['page_qps_over_echo']):.2f}x",
            )
        )
    return rows


def _paired_ratios(p: dict[str, float]) -> str:
    """Median (min-max) of each ratio, single p50 then QPS (bench/paired.py)."""
    return ", ".join(
        f"{p[name]:.2f}x ({p[name + '_min']:.2f}-{p[name + '_max']:.2f})"
        for name in ("single_p50_over_echo", "qps_over_echo")
    )


def _fanout_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    if "mixed_open" in r:
        m, alone = r["mixed_open"], r["reads_open"]
        rows += [
            (
                f"open-loop mixed {m['rate']:.0f} ops/s: read p50 / p99, post p99",
                f"{m['read']['p50_ms']:.1f} / {m['read']['p99_ms']:.1f} ms, {m['post']['p99_ms']:.1f} ms",
            ),
            (
                "  same reads alone (no posts): read p50 / p99",
                f"{alone['read']['p50_ms']:.1f} / {alone['read']['p99_ms']:.1f} ms",
            ),
        ]
        if "mixed_open_direct" in r:
            d = r["mixed_open_direct"]
            rows.append(
                (
                    "  same mix, map-aware client (one hop): read p50 / p99, post p99",
                    f"{d['read']['p50_ms']:.1f} / {d['read']['p99_ms']:.1f} ms, {d['post']['p99_ms']:.1f} ms",
                )
            )
        rows += [
            (
                "  fan-out lag p50 / p99, inbox writes/s",
                f"{m['fanout']['lag_p50_ms']:,.0f} / {m['fanout']['lag_p99_ms']:,.0f} ms, "
                f"{m['fanout']['inbox_writes_per_s']:,.0f}",
            ),
            ("  CPU share (of one core)", ", ".join(f"{k} {v:.2f}" for k, v in sorted(m["cpu_share"].items()))),
        ]
    if "stress" in r:
        rows += _stress_rows(r["stress"])
    return rows


def _stress_rows(stress: dict[str, Any]) -> list[tuple[str, str]]:
    best = stress["sustained"]
    rows = [
        (
            "stress: sustained with lag p99 <= 5 s",
            f"{best['posts_per_s']:.0f} posts/s, {best['inbox_writes_per_s']:,.0f} inbox entries/s, "
            f"read p99 {best['read']['p99_ms']:.0f} ms"
            if best
            else "none of the steps",
        )
    ]
    for step in stress["steps"]:
        rows.append(
            (
                f"  {step['post_rate']:.0f} posts/s offered (+{stress['read_rate']:.0f} reads/s)",
                f"{step['posts_per_s']:.0f} acked/s, {step['inbox_writes_per_s']:,.0f} inbox writes/s, "
                f"lag p99 {step['lag_p99_ms']:,.0f} ms, read p99 {step['read']['p99_ms']:.0f} ms, "
                f"owed at end {step['owed_at_end']:.0f}",
            )
        )
    return rows


def print_stress(r: dict[str, Any]) -> None:
    console = Console(width=140)
    t = Table(title=f"stress ({r['mode']}) {r['date']} on {r['machine']}")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for name, value in _stress_rows(r["stress"]):
        t.add_row(name, value)
    console.print(t)


def print_table(r: dict[str, Any]) -> None:
    console = Console(width=140)
    console.print(f"[bold]feedring bench[/bold] ({r['mode']}) {r['date']} on {r['machine']}, {r['elapsed_s']:.0f}s")
    t = Table(title="figures")
    t.add_column("figure")
    t.add_column("value", justify="right")
    w = r["workload"]
    rows = [
        ("echo baseline QPS / p50 (same harness)", f"{r['echo']['qps']:,.0f} / {r['echo_single']['p50_ms']:.2f} ms"),
        *(
            [
                (
                    "two-hop bare relay / echo: single-call p50, QPS (median of alternating rounds)",
                    f"{r['relay_floor']['p50_over_echo']:.2f}x, {r['relay_floor']['qps_over_echo']:.2f}x "
                    "(the floor of a router -> node read)",
                ),
                (
                    "timeline read / that floor: single p50, read-only QPS",
                    f"{r['read_single']['p50_ms'] / r['echo_single']['p50_ms'] / r['relay_floor']['p50_over_echo']:.2f}"
                    "x, "
                    f"{r['read_only']['qps'] / r['echo']['qps'] / r['relay_floor']['qps_over_echo']:.2f}x",
                ),
            ]
            if "relay_floor" in r
            else []
        ),
        ("raw plyvel batched puts/s", f"{r['plyvel_puts_per_s']:,.0f}"),
        *(
            [("the same with snappy blocks (LevelDB's default)", f"{r['plyvel_puts_per_s_snappy']:,.0f}")]
            if "plyvel_puts_per_s_snappy" in r
            else []
        ),
        *(
            [
                (
                    "store only, per inbox entry: minimal edge-checked insert / FeedStore.insert_inbox",
                    f"{r['store_floors']['minimal_over_plyvel']:.3f}x / "
                    f"{r['store_floors']['insert_inbox_over_plyvel']:.3f}x plyvel (same loop's own baseline)",
                )
            ]
            if "store_floors" in r
            else []
        ),
        *(
            [("hot-user moves to merge-at-read after the load, waited for", f"{r['hot_transitions_s']:.1f} s")]
            if "hot_transitions_s" in r
            else []
        ),
        ("timeline reads QPS: mixed workload, read-only", f"{w['read']['qps']:,.0f}, {r['read_only']['qps']:,.0f}"),
        ("post acks/s in the mixed workload, p50", f"{w['post']['qps']:,.0f}, {w['post']['p50_ms']:.1f} ms"),
        (
            "timeline read p50 / p95 / p99 (loaded)",
            f"{w['read']['p50_ms']:.1f} / {w['read']['p95_ms']:.1f} / {w['read']['p99_ms']:.1f} ms",
        ),
        ("single timeline read p50 (1 in flight)", f"{r['read_single']['p50_ms']:.2f} ms"),
        *(
            [
                (
                    "  through the router against the echo in alternating rounds (median, min-max): p50, QPS",
                    _paired_ratios(r["router_vs_echo"]),
                )
            ]
            if "router_vs_echo" in r
            else []
        ),
        *(
            [
                (
                    "map-aware client (one hop to a node): read-only QPS, single p50",
                    f"{r['read_only_direct']['qps']:,.0f} "
                    f"({r['read_only_direct']['qps'] / r['echo']['qps']:.2f}x echo), "
                    f"{r['read_single_direct']['p50_ms']:.2f} ms "
                    f"({r['read_single_direct']['p50_ms'] / r['echo_single']['p50_ms']:.2f}x echo)",
                ),
                *(
                    [
                        (
                            "  the same against the echo in alternating rounds (median, min-max): p50, QPS",
                            _paired_ratios(r["direct_vs_echo"]),
                        )
                    ]
                    if "direct_vs_echo" in r
                    else []
                ),
                (
                    "one hop with a LevelDB read / echo (the floor of a map-aware read): p50, QPS",
                    f"{r['relay_floor']['one_hop_p50_over_echo']:.2f}x, "
                    f"{r['relay_floor']['one_hop_qps_over_echo']:.2f}x",
                ),
                *(_page_floor_rows(r) if "page_p50_over_echo" in r["relay_floor"] else []),
            ]
            if "read_only_direct" in r and "one_hop_p50_over_echo" in r.get("relay_floor", {})
            else []
        ),
        *(
            [
                (
                    f"readers following no hot user ({r['plain_readers']:,}): read-only QPS, single p50",
                    f"{r['read_only_plain']['qps']:,.0f} ({r['read_only_plain']['qps'] / r['echo']['qps']:.2f}x echo), "
                    f"{r['read_single_plain']['p50_ms']:.2f} ms "
                    f"({r['read_single_plain']['p50_ms'] / r['echo_single']['p50_ms']:.2f}x echo)",
                )
            ]
            if "read_only_plain" in r
            else []
        ),
        *(
            (
                f"post ack p50 / p99, {label} followers" + (" (hot)" if v["hot"] else ""),
                f"{v['p50_ms']:.2f} / {v['p99_ms']:.2f} ms",
            )
            for label, v in r["post_ack"].items()
        ),
        (
            "fan-out delivery: follower inboxes reached/s (replica writes/s), node CPU per replica write",
            f"{r['delivery']['inbox_entries_per_s']:,.0f} ({r['delivery'].get('replica_writes_per_s', 0):,.0f}), "
            f"{r['delivery'].get('node_cpu_us_per_entry', float('nan')):.1f} us",
        ),
        *(
            (
                f"post visible in all {label} followers' timelines: p50 / p99",
                f"{v['p50_ms']:.1f} / {v['p99_ms']:.1f} ms"
                + (
                    f" (the pollers alone, a round of reads: {v['poll_round_p50_ms']:.1f} ms p50)"
                    if "poll_round_p50_ms" in v
                    else ""
                )
                + (
                    f"; no earlier than {v['lower_bound_p50_ms']:.1f} / {v['lower_bound_p99_ms']:.1f} ms, "
                    f"every follower's first read showed it for {v['first_reads_showed_it']:.0%} of posts"
                    if "first_reads_showed_it" in v
                    else ""
                )
                + (f", {v['unseen']:.0f} never seen" if v.get("unseen") else ""),
            )
            for label, v in r.get("visible", {}).items()
        ),
        *(
            (
                f"same, {label} followers polled in rounds by a thread pool (the method up to 2026-12-06)",
                f"{v['p50_ms']:.1f} / {v['p99_ms']:.1f} ms",
            )
            for label, v in r.get("visible_thread_pool", {}).items()
        ),
        *(
            (
                f"watch, {label} streams on one node: post ack -> seen p50 / p99 (by all: p50 / p99), RSS/stream",
                f"{v['p50_ms']:.1f} / {v['p99_ms']:.1f} ms ({v['all_p50_ms']:.1f} / {v['all_p99_ms']:.1f} ms), "
                f"{v['node_rss_kib_per_stream']:.1f} KiB" + (f", {v['missed']:.0f} missed" if v["missed"] else ""),
            )
            for label, v in r.get("watch", {}).items()
        ),
        ("delivery lag p50 / p99", f"{r['delivery']['lag_p50_ms']:.1f} / {r['delivery']['lag_p99_ms']:.1f} ms"),
        (
            "read p50, 20 hot followees vs none",
            f"{r['hot_read']['hot20_p50_ms']:.2f} vs {r['hot_read']['none_p50_ms']:.2f} ms",
        ),
        (
            "ordinary read p99 quiet vs hot burst",
            f"{r['burst']['quiet_read_p99_ms']:.1f} vs {r['burst']['burst_read_p99_ms']:.1f} ms "
            f"({r['burst']['hot_posts_per_s']:.0f} hot posts/s)",
        ),
        *(
            (f"hot post writes per node max/mean, {k}", f"{v['max_over_mean']:.2f} {v['post_writes_per_node']}")
            for k, v in r["salting"].items()
        ),
        (
            "node requests max/mean, keys max/mean",
            f"{r['nodes']['requests_max_over_mean']:.2f}, {r['nodes']['keys_max_over_mean']:.2f}",
        ),
        ("node RSS (MB)", ", ".join(f"{k} {v:.0f}" for k, v in r["nodes"]["rss_mb"].items())),
        (
            "router RSS empty -> after workload -> after all phases (MB)",
            f"{r['router_rss_mb']['empty']:.0f} -> {r['router_rss_mb']['after_workload']:.0f} -> "
            f"{r['router_rss_mb']['after_all_phases']:.0f}",
        ),
        (
            "rebalance: keys/s, MB/s (add a 4th node)",
            f"{r['rebalance']['keys_per_s']:,.0f}, {r['rebalance']['mb_per_s']:.1f} "
            f"({r['rebalance']['keys_moved']:,.0f} keys in {r['rebalance']['seconds']:.1f}s)",
        ),
        (
            "read p50 / p99 before vs during the move",
            f"{r['rebalance']['read_p50_before_ms']:.1f} / {r['rebalance']['read_p99_before_ms']:.1f} vs "
            f"{r['rebalance']['read_p50_during_ms']:.1f} / {r['rebalance']['read_p99_during_ms']:.1f} ms",
        ),
    ]
    rows += _fanout_rows(r)
    rows += _replication_rows(r)
    rows += _inactive_rows(r)
    for name, value in rows:
        t.add_row(name, value)
    console.print(t)
    g = Table(title="targets (ratios to this run's baselines)")
    for column in ("target", "measured", "bound", "met"):
        g.add_column(column)
    for row in r["targets"]:
        met = {True: "[green]met[/green]", False: "[red]not met[/red]", None: "[yellow]not measured[/yellow]"}[
            row["met"]
        ]
        g.add_row(row["target"], str(row["measured"]), str(row["bound"]), met)
    console.print(g)


def plot(r: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    (acks, load, cdf), (over_time, stress, ratios) = axes
    labels = list(r["post_ack"])
    acks.bar(
        [f"{x}{' (hot)' if r['post_ack'][x]['hot'] else ''}" for x in labels],
        [r["post_ack"][x]["p50_ms"] for x in labels],
        label="p50",
    )
    acks.plot(range(len(labels)), [r["post_ack"][x]["p99_ms"] for x in labels], "o-", color="black", label="p99")
    acks.set_title("post ack latency by follower count")
    acks.set_ylabel("ms")
    acks.legend()
    nodes = list(r["nodes"]["keys"])
    load.bar([n + " keys" for n in nodes], [r["nodes"]["keys"][n] for n in nodes])
    twin = load.twinx()
    twin.plot(range(len(nodes)), [r["nodes"]["requests"][n] for n in nodes], "o-", color="black")
    twin.set_ylabel("requests served")
    load.set_title("per-node load")
    if "mixed_open" in r:
        for label, phase in (("reads alone", r["reads_open"]), ("mixed (reads + posts + follows)", r["mixed_open"])):
            points = phase["read_cdf_ms"]
            cdf.plot(points, [i / (len(points) - 1) for i in range(len(points))], label=label)
        cdf.set_xscale("log")
        cdf.set_xlabel("timeline read latency, ms (log scale)")
        cdf.set_ylabel("fraction of reads")
        cdf.set_ylim(0, 1)
        cdf.set_title(f"read latency CDF, open loop at {r['mixed_open']['rate']:.0f} ops/s")
        cdf.legend()
        reads = r["mixed_open"]["over_time"]["reads"]
        fanout = r["mixed_open"]["over_time"]["fanout"]
        over_time.plot([p["t_s"] for p in reads], [p["read_p99_ms"] for p in reads], "o-", label="read p99 (ms)")
        over_time.plot(
            [p["t_s"] for p in fanout], [p["lag_p99_ms"] for p in fanout], "s-", label="fan-out lag p99 (ms)"
        )
        over_time.set_ylim(bottom=0)
        over_time.set_xlabel("seconds into the open-loop mixed phase")
        over_time.set_title("read p99 and fan-out lag over time")
        over_time.legend()
    if "stress" in r and r["stress"]["steps"]:
        steps = r["stress"]["steps"]
        offered = [s["post_rate"] for s in steps]
        stress.plot(offered, [s["lag_p99_ms"] for s in steps], "s-", label="fan-out lag p99 (ms)")
        stress.plot(offered, [s["read"]["p99_ms"] for s in steps], "o-", label="read p99 (ms)")
        stress.axhline(5000, color="red", linestyle=":", label="5 s lag limit")
        stress.set_yscale("log")
        stress.set_xscale("log")
        stress.set_xlabel("posts/s offered (log scale)")
        stress.set_ylabel("ms (log scale)")
        stress.set_title(f"stress: + {r['stress']['read_rate']:.0f} reads/s")
        stress.legend()
    measured = [t for t in r["targets"] if isinstance(t["measured"], int | float)]
    ratios.barh(
        [t["target"][:48] for t in measured],
        [t["measured"] / t["bound"] for t in measured],
        color=["tab:green" if t["met"] else "tab:red" for t in measured],
    )
    ratios.axvline(1.0, color="black", linestyle=":")
    ratios.set_xlim(left=0)
    ratios.set_xlabel("measured / target bound (>= targets: right of 1 met; <= targets: left of 1 met)")
    ratios.tick_params(axis="y", labelsize=7)
    ratios.set_title("each target against its bound")
    fig.suptitle(f"feedring bench ({r['mode']}) {r['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def print_soak(r: dict[str, Any]) -> None:
    soak = r["soak"]
    console = Console(width=140)
    t = Table(title=f"soak {soak['seconds']:.0f} s, {r['date']} on {r['machine']}")
    for column in ("series", "figures", "rule", "bounded"):
        t.add_column(column)
    for key, check in soak["checks"].items():
        figures = ", ".join(f"{k} {v:,.1f}" for k, v in check.items() if isinstance(v, float))
        t.add_row(key, figures, str(check["rule"]), "yes" if check["bounded"] else "NO")
    console.print(t)
    console.print(
        f"{soak['operations']:,.0f} operations, {soak['errors']:.0f} failed, {soak['dropped']:.0f} dropped; "
        f"read p50/p99 {soak['read']['p50_ms']:.1f}/{soak['read']['p99_ms']:.1f} ms; "
        f"verdict: {'PASSED' if soak['passed'] else 'FAILED'}"
    )


def plot_soak(r: dict[str, Any], path: Path) -> Path:
    """Every sampled series against time, one panel per kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.soak import with_unexplained

    rows = [with_unexplained(row) for row in r["soak"]["samples"]]
    panels = [
        ("anon_mb/", "anonymous resident memory, MB (dashed: less bounded caches, LevelDB on nodes)"),
        ("mapped_mb/", "file-backed resident (LevelDB tables), MB"),
        ("disk_mb/", "LevelDB on disk, MB"),
        ("lag_p99_ms", "fan-out lag p99, ms"),
        ("read_p99_ms", "read p99, ms"),
        ("fds/", "open fds (LevelDB tables apart)"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    for axis, (prefix, title) in zip(axes.flat, panels, strict=True):
        keys = sorted({k for row in rows for k in row if k.startswith(prefix)})
        for key in keys:
            points = [(row["t_s"] / 60, row[key]) for row in rows if key in row]
            axis.plot([p[0] for p in points], [p[1] for p in points], label=key.split("/")[-1] if "/" in key else None)
        if prefix == "anon_mb/":  # what must level off (bench/soak.py)
            for key in sorted({k for row in rows for k in row if k.startswith("unexplained_mb/")}):
                points = [(row["t_s"] / 60, row[key]) for row in rows if key in row]
                axis.plot([p[0] for p in points], [p[1] for p in points], linestyle="--", linewidth=1)
        axis.set_title(title)
        axis.set_xlabel("minutes")
        if len(keys) > 1:
            axis.legend(fontsize="small")
    outcome = "passed" if r["soak"]["passed"] else "FAILED"
    fig.suptitle(f"soak {r['soak']['seconds']:.0f} s on {r['machine']}: {outcome}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
