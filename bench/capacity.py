"""`python -m bench.capacity`: what serving Twitter's published 2013 load with feedring would take,
from the per-process figures of the latest full `make bench` run.

    python -m bench.capacity [--bench docs/bench-full-2026-12-01.json] [--json]

By default it takes the run in docs/ whose bare gRPC echo was fastest (the least disturbed).
The bench runs every process on one 2-core machine, so its figures are costs per core of the
whole system (each Python process uses at most one core): a timeline read costs (cores / read-only
QPS) of CPU across router and node; a follower's inbox delivery at RF=3 costs (cores / inboxes
per second). The CPU split between routers and nodes is the one measured in the stress phase.
Every assumption is printed with the result; the ones not measured by the bench say so.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Load", "Capacity", "model", "quietest_bench", "main"]

DOCS = Path(__file__).resolve().parent.parent / "docs"


@dataclass(frozen=True)
class Load:
    """Twitter's published 2013 figures (the issue's numbers) and our storage assumptions."""

    timeline_reads_per_s: float = 300_000
    posts_per_s_average: float = 6_000
    posts_per_s_peak: float = 12_000
    followers_average: float = 200
    users: float = 300e6  # "hundreds of millions" with a home timeline
    timeline_entries: float = 800
    replication_factor: int = 3
    bytes_per_entry: float = 200  # NOT measured: key ~40 B + a ~100-char post encoded ~160 B, LevelDB overhead ignored
    disk_bytes: float = 2e12  # 2 TB SSDs (assumed)
    cores_per_host: int = 16  # node and router processes packed one per core (assumed)
    headroom: float = 0.5  # run at most half busy at peak, so a node or router can fail


@dataclass
class Capacity:
    measured: dict[str, float] = field(default_factory=dict)
    derived: dict[str, float] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)


def _cores(bench: dict[str, Any]) -> int:
    """Cores of the bench machine, from its description ("x86_64, 2 cores, ...")."""
    for part in str(bench.get("machine", "")).split(","):
        words = part.split()
        if len(words) == 2 and words[1] == "cores":
            return int(words[0])
    raise ValueError("the bench JSON does not say how many cores its machine had")


def model(bench: dict[str, Any], load: Load = Load()) -> Capacity:
    cap = Capacity()
    cores = _cores(bench)
    read_qps = float(bench["read_only"]["qps"])
    inboxes_per_s = float(bench["replication"]["rf3"]["inboxes_per_s"])
    shares = bench["stress"]["sustained"]["cpu_share"]
    router_share = sum(v for k, v in shares.items() if k.startswith("router")) / sum(shares.values())
    big = bench["big_node"]
    m = cap.measured
    m["bench cores"] = cores
    m["echo p50 ms"] = float(bench.get("echo_single", {}).get("p50_ms", 0.0))
    m["read-only QPS (whole cluster)"] = read_qps
    m["CPU ms per timeline read"] = cores / read_qps * 1000
    m["follower deliveries/s at RF=3"] = inboxes_per_s
    m["CPU µs per follower delivery (3 replica writes)"] = cores / inboxes_per_s * 1e6
    m["router share of CPU under mixed load"] = router_share
    m["node RSS MB at its size"] = float(big["rss_mb"])
    m["entries on that node (millions)"] = float(big["entries"]) / 1e6
    if "disk_bytes" in big:  # benches from 2026-12-02 on
        m["bytes per key on that node (mostly edges)"] = float(big["disk_bytes"]) / float(big["entries"])

    d = cap.derived
    read_cores = load.timeline_reads_per_s * m["CPU ms per timeline read"] / 1000
    fanout_per_s = load.posts_per_s_peak * load.followers_average
    fanout_cores = fanout_per_s * m["CPU µs per follower delivery (3 replica writes)"] / 1e6
    busy = 1 / load.headroom
    router_cores = (read_cores + fanout_cores) * router_share * busy
    node_cores = (read_cores + fanout_cores) * (1 - router_share) * busy
    stored = load.users * load.timeline_entries * load.replication_factor
    disk_bytes = stored * load.bytes_per_entry
    d["follower deliveries/s at peak"] = fanout_per_s
    d["cores for timeline reads"] = read_cores
    d["cores for fan-out at peak"] = fanout_cores
    d["router processes (1 core each)"] = math.ceil(router_cores)
    d["node processes (1 core each)"] = math.ceil(node_cores)
    d["node hosts"] = math.ceil(d["node processes (1 core each)"] / load.cores_per_host)
    d["router hosts"] = math.ceil(d["router processes (1 core each)"] / load.cores_per_host)
    d["inbox entries stored, all replicas (billions)"] = stored / 1e9
    d["disk, all replicas (TB)"] = disk_bytes / 1e12
    d["disks (2 TB; at least one per node host)"] = max(math.ceil(disk_bytes / load.disk_bytes), d["node hosts"])
    d["entries per node (millions)"] = stored / d["node processes (1 core each)"] / 1e6
    # Node RSS measured at one size; LevelDB keeps data on disk, so memory is taken as that RSS
    # scaled by entries held (an upper bound: most of a node's RSS is not per entry).
    rss_per_million = m["node RSS MB at its size"] / m["entries on that node (millions)"]
    d["node memory, GB each (scaled by entries)"] = rss_per_million * d["entries per node (millions)"] / 1000
    d["memory, all nodes (TB)"] = (
        d["node memory, GB each (scaled by entries)"] * d["node processes (1 core each)"] / 1000
    )
    d["memory, all routers (GB, at the bench's router RSS)"] = (
        float(bench["router_rss_mb"]["after_all_phases"]) * d["router processes (1 core each)"] / 1000
    )
    cap.assumptions = [
        f"load: {load.timeline_reads_per_s:,.0f} timeline reads/s, {load.posts_per_s_average:,.0f} posts/s "
        f"average and {load.posts_per_s_peak:,.0f} at peak (sized for the peak), "
        f"{load.followers_average:.0f} followers per post, {load.users / 1e6:,.0f}M users with "
        f"{load.timeline_entries:.0f}-entry timelines, RF={load.replication_factor}",
        "costs per read and per delivery are the bench's whole-cluster figures divided by its cores: they include "
        "the client load generator's share of the machine, so they overstate feedring's cost",
        "every post is fanned out on write; hot users' posts (fan-out on read) would move cost from deliveries to "
        "reads, which the read-only figure does not include",
        f"processes run at most {load.headroom:.0%} busy at peak (failure headroom); one core per Python process",
        f"bytes per stored inbox entry: {load.bytes_per_entry:.0f} (assumed: an entry holds a copy of the post; "
        "the bench measures bytes per key only on a node of follow edges, which are smaller)",
        f"{load.disk_bytes / 1e12:.0f} TB disks, hosts of {load.cores_per_host} cores (assumed)",
        "memory: node RSS per million entries measured on one node, scaled linearly (an upper bound)",
        "the router/node CPU split is the stress phase's measured share",
    ]
    return cap


def quietest_bench(directory: Path = DOCS) -> Path:
    """Of the full bench runs kept in docs/, the one whose bare gRPC echo was fastest: the machine is
    shared, and other load only ever slows a run down, so that run is the best measure of the
    hardware (on 2026-12-01 the echo took 0.44 ms, on 2026-12-02 0.69 ms: every cost ~1.6x)."""
    runs = []
    for path in sorted(directory.glob("bench-full-????-??-??.json")):
        echo = json.loads(path.read_text()).get("echo_single", {}).get("p50_ms")
        if echo:
            runs.append((float(echo), path))
    if not runs:
        raise FileNotFoundError(f"no bench-full-*.json with an echo baseline in {directory}: run `make bench`")
    return min(runs)[1]


def _print(cap: Capacity, source: Path) -> None:
    print(f"Capacity model from {source.name} (bare gRPC echo p50 {cap.measured['echo p50 ms']:.2f} ms)")
    for title, values in (("measured", cap.measured), ("to serve the load", cap.derived)):
        print(f"\n{title}:")
        width = max(len(k) for k in values)
        for key, value in values.items():
            shown = f"{value:,.0f}" if value >= 100 or float(value).is_integer() else f"{value:,.2f}"
            print(f"  {key:<{width}}  {shown:>14}")
    print("\nassumptions:")
    for line in cap.assumptions:
        print(f"  - {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bench", type=Path, default=None, help="a full bench JSON (default: the quietest run in docs/, by its echo)"
    )
    parser.add_argument("--json", action="store_true", help="print the model as JSON")
    args = parser.parse_args(argv)
    try:
        source = args.bench or quietest_bench()
        cap = model(json.loads(source.read_text()))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"source": source.name, **asdict(cap)}, indent=1))
    else:
        _print(cap, source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
