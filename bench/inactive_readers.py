"""Readers who went away: what skipping their fan-out saves, and what their first read back costs.

On a cluster of its own (RF=3, [fanout] inactive_after short enough to wait out), loaded with the
power-law graph: the same posts (same authors) are made twice, first while every reader counts as
active, then once a stated share of them (INACTIVE_SHARE) has not read for inactive_after and the
rest have. Reported for each: inbox entries written per post (each follower's entry on each
replica, from the delivery drivers' counts, less the entries the replicas skipped), and the delivery
rate (posts until every replica's inboxes are written, per second). Then returning readers following
100 and 1,000 authors read their timeline for the first time in inactive_after (a rebuild), against
ordinary reads of active readers, p50/p99.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from bench import graphs, scenarios
from bench.sizes import Sizes
from bench.stats import summary
from client import FeedClient
from ops.local_cluster import LocalCluster

__all__ = ["inactive_readers", "INACTIVE_SHARE"]

INACTIVE_SHARE = 0.6
RETURNING = 20  # returning readers per followee count
REPLICAS = 3  # the bench cluster's replication factor (scenarios.write_cluster_file)


def inactive_readers(directory: Path, users: int, seed: int, sizes: Sizes) -> dict[str, object]:
    away_s = sizes.inactive_after_s
    path = scenarios.write_cluster_file(
        directory, 10_000, 8, [], extra=["[fanout]", f"inactive_after = {away_s:g}", ""]
    )
    cluster = LocalCluster(path)
    cluster.start(quiet=True)
    try:
        with FeedClient(cluster.config.routers[0].address, timeout_s=120, token=cluster.secret) as client:
            return _run(client, users, seed, sizes.inactive_posters, away_s)
    finally:
        cluster.stop(quiet=True)


def _run(client: FeedClient, users: int, seed: int, posts: int, away_s: float) -> dict[str, object]:
    rng = random.Random(seed)
    edges = graphs.synthetic_edges(users, seed)
    readers = sorted({follower for follower, _ in edges})
    active = rng.sample(readers, round((1 - INACTIVE_SHARE) * len(readers)))
    authors = [f"u{i}" for i in range(min(1000, users))]
    returning = {n: [f"back{n}-{i}" for i in range(RETURNING)] for n in (100, 1000)}
    edges += [(r, a) for r in returning[100] for a in rng.sample(authors, 100)]
    edges += [(r, a) for r in returning[1000] for a in authors[:1000]]
    joined = time.monotonic()  # every reader's record starts with its first follow, from here
    graphs.load(client, edges, len(edges), f"power-law graph for inactive readers ({users} users)")
    for author in authors:  # something for the returning readers to find
        client.post(author, f"{author} was here")
    scenarios.wait_for_deliveries(client)
    posters = [f"u{rng.randrange(users)}" for _ in range(posts)]

    print("    posts while every reader is active ...", flush=True)
    everyone = _post_phase(client, posters)
    # The active share reads once, late enough that it is still active through the second phase.
    ready_s = time.monotonic() - joined
    if ready_s > away_s - 12:
        print(f"    (loading and the first phase took {ready_s:.0f} s: readers may go inactive early)", flush=True)
    _sleep_until(joined + away_s - 12)
    ordinary = _timed_reads(client, active)
    print(f"    waiting for {INACTIVE_SHARE:.0%} of the readers to count as inactive ...", flush=True)
    expected = (len(readers) - len(active) + 2 * RETURNING) * REPLICAS  # counted on each replica
    inactive = _wait_inactive(client, 0.98 * expected, joined + away_s + 30)
    print("    the same posts with the inactive readers skipped ...", flush=True)
    skipping = _post_phase(client, posters)
    first_reads = {f"following_{n}": summary(_timed_reads(client, returning[n])) for n in returning}
    return {
        "inactive_after_s": away_s,
        "readers": len(readers),
        "inactive_share": INACTIVE_SHARE,
        "inactive_readers_seen": inactive,
        "posts_per_phase": len(posters),
        "all_active": everyone,
        "inactive_skipped": skipping,
        "entries_ratio": skipping["entries_per_post"] / everyone["entries_per_post"],
        "delivery_speedup": skipping["posts_per_s"] / everyone["posts_per_s"],
        "returning_first_read": first_reads,
        "ready_s": ready_s,  # loading and the first phase: under inactive_after - 12 s, or figures skew
        "ordinary_read": summary(ordinary),
    }


def _post_phase(client: FeedClient, posters: list[str]) -> dict[str, float]:
    """Posts, then waits until every inbox is written: entries written and skipped, and the rate."""
    before, _ = _steady_counts(client)
    started = time.perf_counter()
    for author in posters:
        client.post(author, "a post for the inactive-readers bench")
    scenarios.wait_for_deliveries(client)
    after, done = _steady_counts(client)
    elapsed = done - started
    # Written: every follower's entry on each replica, less the skipped ones (the nodes' inbox key
    # counts are net of the trimming of full inboxes, so they undercount writes).
    _, skipped, followers = (a - b for a, b in zip(after, before, strict=True))
    written = followers * REPLICAS - skipped
    return {
        "followers_per_post": followers / len(posters),
        "entries_per_post": written / len(posters),
        "skipped_per_post": skipped / len(posters),
        "posts_per_s": len(posters) / elapsed,
        "entries_per_s": written / elapsed,
    }


def _counts(client: FeedClient) -> tuple[int, int, int]:
    """Inbox keys (net: what the replicas hold), entries skipped, and entries delivered (once per
    follower: the drivers' count)."""
    nodes = client.cluster_status().nodes
    return (
        sum(n.keys_by_family.get("inbox", 0) for n in nodes),
        sum(n.delivery.inbox_entries_skipped for n in nodes),
        sum(n.delivery.inbox_writes for n in nodes),
    )


def _steady_counts(client: FeedClient, quiet_s: float = 2.0) -> tuple[tuple[int, int, int], float]:
    """The counts once every replica has every write: no hints held and no change for `quiet_s` (a
    replica outside the quorum applies a fan-out batch after the delivery is done). Also when they
    last changed (perf_counter)."""
    last, changed_at = None, time.perf_counter()
    while True:
        nodes = client.cluster_status().nodes
        now = _counts(client)
        if now != last:
            last, changed_at = now, time.perf_counter()
        elif time.perf_counter() - changed_at >= quiet_s and not sum(n.replication.hints for n in nodes):
            return now, changed_at
        time.sleep(0.2)


def _timed_reads(client: FeedClient, users: list[str]) -> list[float]:
    out = []
    for user in users:
        started = time.perf_counter()
        client.timeline(user)
        out.append(time.perf_counter() - started)
    return out


def _wait_inactive(client: FeedClient, at_least: float, deadline: float) -> int:
    seen = 0
    while time.monotonic() < deadline:
        seen = sum(n.delivery.inactive_readers for n in client.cluster_status().nodes)
        if seen >= at_least:
            break
        time.sleep(0.5)
    return seen


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))
