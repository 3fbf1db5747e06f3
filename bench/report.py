"""The benchmark's output: targets met or not, a table, and a plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["targets", "print_table", "plot"]


def _get(results: dict[str, Any], *path: str) -> float:
    value: Any = results
    for key in path:
        value = value[key]
    return float(value)


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 5 with its measured ratio; every ratio is against this run's baseline."""
    top = list(r["post_ack"])[-1]
    rows = [
        (
            "timeline read QPS (read-only load) >= 0.4x echo QPS",
            _get(r, "read_only", "qps") / _get(r, "echo", "qps"),
            0.4,
            ">=",
        ),
        (
            "single timeline read p50 <= 2.5x echo p50",
            _get(r, "read_single", "p50_ms") / _get(r, "echo_single", "p50_ms"),
            2.5,
            "<=",
        ),
        (
            "fan-out delivery >= 0.2x raw plyvel batched puts",
            _get(r, "delivery", "inbox_entries_per_s") / _get(r, "plyvel_puts_per_s"),
            0.2,
            ">=",
        ),
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
            "measured": f"{node_mb:.0f} MB with {node_keys:,} entries",
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
            "RF=1 vs RF=3: read-only timeline QPS",
            f"{one['read_qps']:,.0f} vs {three['read_qps']:,.0f} ({ratio['read_qps']:.2f}x)",
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


def print_table(r: dict[str, Any]) -> None:
    console = Console(width=140)
    console.print(f"[bold]feedring bench[/bold] ({r['mode']}) {r['date']} on {r['machine']}, {r['elapsed_s']:.0f}s")
    t = Table(title="figures")
    t.add_column("figure")
    t.add_column("value", justify="right")
    w = r["workload"]
    rows = [
        ("echo baseline QPS / p50 (same harness)", f"{r['echo']['qps']:,.0f} / {r['echo_single']['p50_ms']:.2f} ms"),
        ("raw plyvel batched puts/s", f"{r['plyvel_puts_per_s']:,.0f}"),
        ("timeline reads QPS: mixed workload, read-only", f"{w['read']['qps']:,.0f}, {r['read_only']['qps']:,.0f}"),
        ("post acks/s in the mixed workload, p50", f"{w['post']['qps']:,.0f}, {w['post']['p50_ms']:.1f} ms"),
        (
            "timeline read p50 / p95 / p99 (loaded)",
            f"{w['read']['p50_ms']:.1f} / {w['read']['p95_ms']:.1f} / {w['read']['p99_ms']:.1f} ms",
        ),
        ("single timeline read p50 (1 in flight)", f"{r['read_single']['p50_ms']:.2f} ms"),
        *(
            (
                f"post ack p50 / p99, {label} followers" + (" (hot)" if v["hot"] else ""),
                f"{v['p50_ms']:.2f} / {v['p99_ms']:.2f} ms",
            )
            for label, v in r["post_ack"].items()
        ),
        ("fan-out delivery (inbox entries/s)", f"{r['delivery']['inbox_entries_per_s']:,.0f}"),
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
    rows += _replication_rows(r)
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

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    labels = list(r["post_ack"])
    left.bar(
        [f"{x}{' (hot)' if r['post_ack'][x]['hot'] else ''}" for x in labels],
        [r["post_ack"][x]["p50_ms"] for x in labels],
        label="p50",
    )
    left.plot(range(len(labels)), [r["post_ack"][x]["p99_ms"] for x in labels], "o-", color="black", label="p99")
    left.set_title("post ack latency by follower count")
    left.set_ylabel("ms")
    left.legend()
    nodes = list(r["nodes"]["keys"])
    right.bar([n + " keys" for n in nodes], [r["nodes"]["keys"][n] for n in nodes])
    twin = right.twinx()
    twin.plot(range(len(nodes)), [r["nodes"]["requests"][n] for n in nodes], "o-", color="black")
    twin.set_ylabel("requests served")
    right.set_title("per-node load")
    fig.suptitle(f"feedring bench ({r['mode']}) {r['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path
