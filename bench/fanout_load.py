"""Reads beside fan-out: an open-loop mixed load at a fixed rate, and the stress steps that find the
post rate the cluster sustains.

Open loop: operations start on a schedule whatever the answers' pace (as a real service's users
arrive), so read latency is service time plus real queueing, not the closed loop's
"calls in flight / throughput". While it runs, every second the bench samples each node's delivery
figures: its cumulative lag histogram (post stored -> in every follower's inbox) and inbox writes,
and the CPU time of every server process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench import scenarios
from bench.harness import Mix, run_load
from bench.processes import cpu_seconds, server_pids
from bench.sampling import PeriodicSampler
from bench.stats import summary
from client import FeedClient
from client.feed_client import ClusterStatus
from ops.local_cluster import LocalCluster

__all__ = ["open_loop_mixed", "stress", "lag_percentiles", "ServerSampler"]

LAG_LIMIT_MS = 5_000.0  # the stress phase stops at the step whose fan-out lag p99 passes this


def lag_percentiles(before: ClusterStatus, after: ClusterStatus) -> dict[str, float]:
    """p50/p99 of the records finished between two status snapshots, from the nodes' cumulative
    histograms (each percentile is interpolated inside its bucket; the top bucket reads as its floor)."""
    counts: dict[float, int] = {}
    for node_after in after.nodes:
        node_before = next((n for n in before.nodes if n.id == node_after.id), None)
        old = dict(node_before.delivery.lag_buckets) if node_before else {}
        for le, count in node_after.delivery.lag_buckets:
            counts[le] = counts.get(le, 0) + count - old.get(le, 0)
    bounds = sorted(counts)
    total = sum(counts.values())
    out = {"records": float(total)}
    for name, q in (("lag_p50_ms", 0.5), ("lag_p99_ms", 0.99)):
        out[name] = _bucket_quantile(bounds, [counts[b] for b in bounds], total, q)
    return out


def _bucket_quantile(bounds: list[float], counts: list[int], total: int, q: float) -> float:
    if not total:
        return 0.0
    rank, seen, low = q * total, 0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count and seen + count >= rank:
            if bound == float("inf"):
                return low
            return low + (bound - low) * (rank - seen) / count
        seen += count
        low = bound if bound != float("inf") else low
    return low


@dataclass
class ServerSampler(PeriodicSampler):
    """Samples, every `every_s` in a thread: cluster status (lag histograms, inbox writes) and each
    server process's CPU time. `timeline()` turns the samples into per-interval figures."""

    client: FeedClient
    pids: dict[str, int]
    every_s: float = 1.0
    samples: list[tuple[float, ClusterStatus, dict[str, float]]] = field(default_factory=list)

    def begin(self) -> None:
        self._sample()

    def tick(self) -> None:
        self._sample()

    def end(self) -> None:
        self._sample()

    def _sample(self) -> None:
        try:
            status = self.client.cluster_status()
        except Exception:  # a sample missed under load is just a gap
            return
        self.samples.append((time.perf_counter(), status, {n: cpu_seconds(p) for n, p in self.pids.items()}))

    def cpu_share(self) -> dict[str, float]:
        """Each process's CPU time over the whole sampling, as a share of one core."""
        (t0, _, c0), (t1, _, c1) = self.samples[0], self.samples[-1]
        return {name: (c1[name] - c0.get(name, 0.0)) / (t1 - t0) for name in c1}

    def inbox_writes_per_s(self) -> float:
        (t0, s0, _), (t1, s1, _) = self.samples[0], self.samples[-1]
        return (_inbox_writes(s1) - _inbox_writes(s0)) / (t1 - t0)

    def lag(self) -> dict[str, float]:
        return lag_percentiles(self.samples[0][1], self.samples[-1][1])

    def timeline(self) -> list[dict[str, float]]:
        """Per interval: seconds since start, lag p99 of the records finished in it, records owed."""
        t_start = self.samples[0][0]
        out = []
        for (_, s0, _), (t1, s1, _) in zip(self.samples, self.samples[1:], strict=False):
            lag = lag_percentiles(s0, s1)
            out.append(
                {
                    "t_s": t1 - t_start,
                    "lag_p99_ms": lag["lag_p99_ms"],
                    "owed": float(sum(n.delivery.records for n in s1.nodes)),
                }
            )
        return out


def _inbox_writes(status: ClusterStatus) -> int:
    return sum(n.delivery.inbox_writes for n in status.nodes)


def _read_p99_over_time(load: dict[str, list[float]], seconds: float) -> list[dict[str, float]]:
    by_second: dict[int, list[float]] = {}
    for latency, at in zip(load.get("read", []), load.get("read_at", []), strict=False):
        by_second.setdefault(int(at), []).append(latency)
    return [
        {"t_s": float(s + 1), "read_p99_ms": summary(v)["p99_ms"], "reads": float(len(v))}
        for s, v in sorted(by_second.items())
        if s < seconds
    ]


def _cdf(latencies_s: list[float], points: int = 100) -> list[float]:
    """Latency (ms) at each of `points` evenly spaced quantiles, for plotting a CDF."""
    ordered = sorted(latencies_s)
    if not ordered:
        return []
    return [ordered[min(int(i / points * len(ordered)), len(ordered) - 1)] * 1000 for i in range(points + 1)]


def open_loop_mixed(
    cluster: LocalCluster,
    client: FeedClient,
    users: int,
    seconds: float,
    rate: float,
    mix: Mix,
    processes: int,
    direct: bool = False,
) -> dict[str, object]:
    """The mixed workload at a fixed `rate` of operations per second (open loop); through the router,
    or with `direct` each call to a node holding its key, as the map-aware FeedClient sends it."""
    target = cluster.config.routers[0].address
    with ServerSampler(client, server_pids(cluster)) as sampler:
        load = run_load(target, "feed", seconds, processes, 256, mix, users, rate=rate, direct=direct)
    return {
        "rate": rate,
        "read": summary(load.get("read", []), seconds),
        "read_cdf_ms": _cdf(load.get("read", [])),
        "post": summary(load.get("post", []), seconds),
        "errors": float(len(load.get("error", []))),
        "dropped": float(len(load.get("dropped", []))),
        "fanout": sampler.lag() | {"inbox_writes_per_s": sampler.inbox_writes_per_s()},
        "cpu_share": sampler.cpu_share(),
        "over_time": {"reads": _read_p99_over_time(load, seconds), "fanout": sampler.timeline()},
    }


def stress(
    cluster: LocalCluster,
    client: FeedClient,
    users: int,
    step_s: float,
    read_rate: float,
    post_rates: list[float],
    processes: int,
) -> dict[str, object]:
    """Raises the post rate step by step (reads at a fixed rate beside it) until fan-out lag p99
    passes LAG_LIMIT_MS or deliveries are left owed; the last step within it is the capacity."""
    target = cluster.config.routers[0].address
    steps: list[dict[str, object]] = []
    sustained: dict[str, object] | None = None
    for post_rate in post_rates:
        rate = read_rate + post_rate
        mix = Mix(read_rate / rate, post_rate / rate, 0.0)
        with ServerSampler(client, server_pids(cluster)) as sampler:
            load = run_load(target, "feed", step_s, processes, 256, mix, users, rate=rate)
        owed = sum(n.delivery.records for n in sampler.samples[-1][1].nodes)
        oldest = max((n.delivery.oldest_age_s for n in sampler.samples[-1][1].nodes), default=0.0)
        step = {
            "post_rate": post_rate,
            "posts_per_s": len(load.get("post", [])) / step_s,
            "inbox_writes_per_s": sampler.inbox_writes_per_s(),
            "read": summary(load.get("read", []), step_s),
            "errors": float(len(load.get("error", []))),
            "dropped": float(len(load.get("dropped", []))),
            "owed_at_end": float(owed),
            "oldest_owed_s": oldest,
            "cpu_share": sampler.cpu_share(),
        } | sampler.lag()
        steps.append(step)
        print(
            f"    {post_rate:>5.0f} posts/s offered: {step['posts_per_s']:.0f} acked/s, "
            f"{step['inbox_writes_per_s']:,.0f} inbox writes/s, lag p99 {step['lag_p99_ms']:,.0f} ms, "
            f"owed {owed}, read p99 {step['read']['p99_ms']:.0f} ms",  # type: ignore[index]
            flush=True,
        )
        within = float(step["lag_p99_ms"]) <= LAG_LIMIT_MS and oldest <= LAG_LIMIT_MS / 1000  # type: ignore[arg-type]
        if not within or step["dropped"] or step["errors"]:
            break
        sustained = step
        scenarios.wait_for_deliveries(client, timeout_s=120.0)
    capacity = float(sustained["posts_per_s"]) if sustained else 0.0  # type: ignore[arg-type]
    return {
        "read_rate": read_rate,
        "step_s": step_s,
        "steps": steps,
        "sustained": sustained,
        "capacity_posts_per_s": capacity,
    }
