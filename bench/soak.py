"""`python -m bench --soak SECONDS`: the shipped configuration under steady load for a long time,
checking that nothing grows without bound.

The load is the mixed workload as an open loop (reads at a fixed rate, posts at 70% of the post
rate the stress phase sustains, a few follows and unfollows). Every 10 s the soak samples, per
server process, resident memory (anonymous apart from file-backed: LevelDB maps its tables, so
that part grows with the data) and open file descriptors (LevelDB's table files apart: LevelDB caps those at
its max_open_files), each node's LevelDB size on disk, and the fan-out lag p99 of the deliveries
finished in the interval; read p99 per interval comes from the clients' own timings.

The verdict (`verdict`) reads the samples after a warm-up. Anonymous memory and descriptors must
level off: over the second half, their growth a day (the Theil-Sen slope of 2-minute medians, with
its 95% confidence bounds) must not be shown to exceed their current value, i.e. the run must not
establish that they would double within a day. Memory wanders by a few MB with compaction and
buffers, so an hour bounds slow growth only loosely: each check reports the upper bound too (the
fastest growth the run cannot rule out); a longer run narrows it. What is judged is the memory not
explained by bounded caches that are still filling: a process's caches of keys (partition_of, a
node's inbox prefixes: counted in `feedring_key_cache_entries`, ~KEY_CACHE_BYTES each, sampled as
key_caches_k) and, on a node, LevelDB's block cache and memtables (they fill up to a bound: LevelDB
reports them, sampled as leveldb_cache_mb) and each open table's index and bloom filter (10 bits a
key, so they grow with the keys held: allowed TABLE_BYTES_PER_KEY a key, sampled as keys_m): the
rest is unexplained_mb. Lag and read p99 of the last third must stay within 2x (plus a small slack)
of the first third; the disk and the mapped tables may grow with the data written, but not faster
over time (last third's growth rate <= 1.5x the first third's).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from scipy.stats import theilslopes

from bench import fanout_load, scenarios
from bench.harness import Mix, run_load
from bench.processes import resident_bytes, server_pids
from bench.sampling import PeriodicSampler
from bench.stats import summary
from client import FeedClient, top
from client.feed_client import ClusterStatus
from node.metrics import directory_bytes
from ops.local_cluster import LocalCluster

__all__ = ["SoakSampler", "verdict", "with_unexplained", "soak", "SAMPLE_EVERY_S", "TABLE_BYTES_PER_KEY"]

SAMPLE_EVERY_S = 10.0
LOAD_SHARE = 0.7  # of the stress capacity (issue #26: 70%)
READ_RATE = 100.0  # reads/s, as in the stress phase
FOLLOW_RATE = 2.0  # follows and unfollows/s
DAY_S = 86_400.0
# LevelDB keeps each open table's bloom filter (bloom_filter_bits=10: 1.25 bytes a key) and index
# block in memory, outside the block cache it reports: measured 0.7 bytes a key over a soak's store.
TABLE_BYTES_PER_KEY = 2.0
# A cache of keys' entry (partition_of's: the key, its tuple, the lru's link): 234 bytes by
# tracemalloc for 65,536 keys like "user12345", plus the allocator's share.
KEY_CACHE_BYTES = 256.0
BLOCK_S = 120.0  # memory is judged on medians of 2-minute blocks (compaction and buffers make it jumpy)


def open_fds(pid: int) -> tuple[int, int]:
    """(descriptors that are not LevelDB table files, LevelDB table files)."""
    other = tables = 0
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0, 0
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.endswith(".ldb") or target.endswith(".sst"):
            tables += 1
        else:
            other += 1
    return other, tables


@dataclass
class SoakSampler(PeriodicSampler):
    """Samples every `every_s` in a thread; `rows` holds one dict per sample."""

    client: FeedClient
    pids: dict[str, int]
    data_dirs: dict[str, Path]
    metrics: dict[str, top.Target] = field(default_factory=dict)  # a process's /metrics, by the pids' names
    every_s: float = SAMPLE_EVERY_S
    rows: list[dict[str, float]] = field(default_factory=list)
    _started: float = 0.0
    _last_status: ClusterStatus | None = None
    _shown: float = 0.0  # when the last progress line was printed (seconds into the run)

    def begin(self) -> None:
        self._started = time.perf_counter()
        self._last_status = self._status()

    def tick(self) -> None:
        row = self.sample()
        self.rows.append(row)
        if row["t_s"] >= self._shown + 60:  # a line a minute: a person watching a long run sees it move
            self._shown = row["t_s"]
            _print_row(row)

    def _status(self) -> ClusterStatus | None:
        try:
            return self.client.cluster_status()
        except Exception:  # a sample missed under load is a gap, not a failure
            return None

    def sample(self) -> dict[str, float]:
        row: dict[str, float] = {"t_s": time.perf_counter() - self._started}
        for name, pid in self.pids.items():
            other, tables = open_fds(pid)
            anon, mapped = resident_bytes(pid)
            row[f"anon_mb/{name}"] = anon / 2**20
            row[f"mapped_mb/{name}"] = mapped / 2**20
            row[f"fds/{name}"] = float(other)
            row[f"table_fds/{name}"] = float(tables)
        for name, target in self.metrics.items():
            scraped = top.scrape(target)
            if not scraped.error:
                row[f"key_caches_k/{name}"] = scraped.total("feedring_key_cache_entries") / 1e3
        for node, path in self.data_dirs.items():
            row[f"disk_mb/{node}"] = directory_bytes(path) / 2**20
        status = self._status()
        if status is not None and self._last_status is not None:
            lag = fanout_load.lag_percentiles(self._last_status, status)
            row["lag_p99_ms"] = lag["lag_p99_ms"]
            row["owed"] = float(sum(n.delivery.records for n in status.nodes))
        if status is not None:
            self._last_status = status
            for health in status.nodes:
                if health.healthy:
                    row[f"leveldb_cache_mb/{health.id}"] = health.leveldb_cache_bytes / 2**20
                    row[f"keys_m/{health.id}"] = sum(health.keys_by_family.values()) / 1e6
        return row


def _series(rows: list[dict[str, float]], key: str) -> list[tuple[float, float]]:
    return [(row["t_s"], row[key]) for row in rows if key in row]


def with_unexplained(row: dict[str, float]) -> dict[str, float]:
    """A process's anonymous memory less its bounded caches still filling and, on a node, what
    LevelDB holds for its data (see the module's doc)."""
    out = dict(row)
    for key, anon in row.items():
        if not key.startswith("anon_mb/"):
            continue
        name = key.partition("/")[2]
        explained, known = 0.0, False
        key_caches_k = row.get(f"key_caches_k/{name}")
        if key_caches_k is not None:
            explained, known = key_caches_k * 1e3 * KEY_CACHE_BYTES / 2**20, True
        cache, keys_m = row.get(f"leveldb_cache_mb/{name}"), row.get(f"keys_m/{name}")
        if cache is not None and keys_m is not None:
            explained, known = explained + cache + keys_m * 1e6 * TABLE_BYTES_PER_KEY / 2**20, True
        if known:
            out[f"unexplained_mb/{name}"] = anon - explained
    return out


def growth_per_day(series: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(growth a day, its 95% lower and upper bounds): the Theil-Sen slope of the series' 2-minute
    medians (of the samples themselves when there are fewer than six blocks)."""
    blocks: dict[int, list[tuple[float, float]]] = {}
    for t, v in series:
        blocks.setdefault(int(t // BLOCK_S), []).append((t, v))
    points = [
        (statistics.median(t for t, _ in block), statistics.median(v for _, v in block))
        for _, block in sorted(blocks.items())
    ]
    if len(points) < 6:
        points = series
    fit = theilslopes([v for _, v in points], [t for t, _ in points], alpha=0.95)
    return float(fit.slope) * DAY_S, float(fit.low_slope) * DAY_S, float(fit.high_slope) * DAY_S


_NOT_JUDGED = ("table_fds/", "leveldb_cache_mb/", "keys_m/", "key_caches_k/")  # context for the judged series


def verdict(rows: list[dict[str, float]], warmup_s: float) -> dict[str, dict[str, object]]:
    """For every sampled series: the figures the check used and whether it is bounded."""
    steady = [with_unexplained(row) for row in rows if row["t_s"] >= warmup_s]
    explained = {k.partition("/")[2] for row in steady for k in row if k.startswith("unexplained_mb/")}
    keys = sorted(
        {
            k
            for row in steady
            for k in row
            if k != "t_s"
            and not k.startswith(_NOT_JUDGED)
            and not (k.startswith("anon_mb/") and k.partition("/")[2] in explained)
        }
    )
    out: dict[str, dict[str, object]] = {}
    for key in keys:
        series = _series(steady, key)
        if len(series) < 6:
            continue
        third = len(series) // 3
        first, last = [v for _, v in series[:third]], [v for _, v in series[-third:]]
        kind = key.split("/")[0]
        if kind in ("anon_mb", "unexplained_mb", "fds"):
            half = series[len(series) // 2 :]
            now = statistics.fmean(v for _, v in half[-3:])
            per_day, low, high = growth_per_day(half)
            slack = 16.0 if kind == "fds" else 0.0  # a few connections come and go
            out[key] = {
                "now": now,
                "growth_per_day": per_day,
                "growth_per_day_low": low,
                "growth_per_day_high": high,
                "bounded": low <= max(now, 1.0) + slack,
                "rule": "second half: growth a day, 95% lower bound, <= current value",
            }
        elif kind in ("disk_mb", "mapped_mb"):
            # Mean of each third (compaction makes single samples jumpy): the growth from the first
            # third to the second against the growth from the second to the last.
            means = [
                statistics.fmean(v for _, v in chunk)
                for chunk in (series[:third], series[third:-third], series[-third:])
            ]
            hours = (series[-1][0] - series[0][0]) / 3 / 3600
            rate_first, rate_last = (means[1] - means[0]) / hours, (means[2] - means[1]) / hours
            out[key] = {
                "mb_per_hour_first": rate_first,
                "mb_per_hour_last": rate_last,
                "bounded": rate_last <= 1.5 * max(rate_first, 0.0) + 16.0,
                "rule": "growth rate, last third <= 1.5x the first third's + 16 MB/h",
            }
        elif key in ("lag_p99_ms", "read_p99_ms", "owed"):
            a, c = statistics.median(first), statistics.median(last)
            slack = {"lag_p99_ms": 250.0, "read_p99_ms": 25.0, "owed": 50.0}[key]
            out[key] = {
                "median_first": a,
                "median_last": c,
                "bounded": c <= 2 * a + slack,
                "rule": f"median of the last third <= 2x the first third's + {slack:g}",
            }
    return out


def _metrics_targets(cluster: LocalCluster) -> dict[str, top.Target]:
    """Every process's /metrics under its name in server_pids (a router's workers are its children,
    forked in worker order)."""
    out = {}
    for target in top.targets(cluster.config):
        router, _, worker = target.name.partition(".")
        out[f"router-{router}/{worker}" if target.role == "router" else target.name] = target
    return out


def _read_p99_rows(load: dict[str, list[float]], every_s: float) -> dict[int, float]:
    """Read p99 (ms) per sampling interval, keyed by the interval's index."""
    by_interval: dict[int, list[float]] = {}
    for latency, at in zip(load.get("read", []), load.get("read_at", []), strict=False):
        by_interval.setdefault(int(at // every_s), []).append(latency)
    return {i: summary(v)["p99_ms"] for i, v in by_interval.items() if len(v) >= 20}


def soak(
    cluster: LocalCluster,
    client: FeedClient,
    users: int,
    seconds: float,
    post_rate: float,
    every_s: float = SAMPLE_EVERY_S,
) -> dict[str, object]:
    """Runs the load for `seconds` with a sampler beside it; returns samples, totals and verdict."""
    rate = READ_RATE + post_rate + FOLLOW_RATE
    mix = Mix(READ_RATE / rate, post_rate / rate, FOLLOW_RATE / rate)
    target = cluster.config.routers[0].address
    data_dirs = {n.id: Path(n.data_dir) for n in cluster.config.nodes}
    scenarios.wait_for_deliveries(client)
    print(
        f"soak: {seconds:.0f} s at {READ_RATE:.0f} reads/s, {post_rate:.1f} posts/s, {FOLLOW_RATE:.0f} follows/s; "
        f"a sample every {every_s:.0f} s",
        flush=True,
    )
    with SoakSampler(client, server_pids(cluster), data_dirs, _metrics_targets(cluster), every_s) as sampler:
        load = run_load(target, "feed", seconds, 2, 256, mix, users, rate=rate)
    reads = _read_p99_rows(load, every_s)
    for row in sampler.rows:  # a row at t covers the interval that ended at t
        interval = int(row["t_s"] // every_s) - 1
        if interval in reads:
            row["read_p99_ms"] = reads[interval]
    checks = verdict(sampler.rows, warmup_s=min(300.0, seconds / 5))
    operations = sum(len(load.get(op, [])) for op in ("read", "post", "follow"))
    errors = len(load.get("error", [])) + len(load.get("dropped", []))
    return {
        "seconds": seconds,
        "rates": {"read": READ_RATE, "post": post_rate, "follow": FOLLOW_RATE},
        "operations": float(operations),
        "errors": float(len(load.get("error", []))),
        "dropped": float(len(load.get("dropped", []))),
        "read": summary(load.get("read", []), seconds),
        "post": summary(load.get("post", []), seconds),
        "samples": sampler.rows,
        "checks": checks,
        "passed": all(c["bounded"] for c in checks.values()) and errors <= 0.001 * max(operations, 1),
    }


def _print_row(row: dict[str, float]) -> None:
    anon = max((v for k, v in row.items() if k.startswith("anon_mb/n")), default=0.0)
    mapped = max((v for k, v in row.items() if k.startswith("mapped_mb/n")), default=0.0)
    disk = sum(v for k, v in row.items() if k.startswith("disk_mb/"))
    print(
        f"    {row['t_s']:>6.0f} s: node memory max {anon:.0f} MB + {mapped:.0f} MB of mapped LevelDB tables, "
        f"LevelDB {disk:.0f} MB in all, "
        f"lag p99 {row.get('lag_p99_ms', float('nan')):.0f} ms, deliveries owed {row.get('owed', 0):.0f}",
        flush=True,
    )
