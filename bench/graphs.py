"""Follow graphs: the real Reed College graph (datasets/) and a seeded power-law generator."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from rich.progress import Progress

from client import FeedClient
from common.errors import Unavailable

__all__ = ["reed_edges", "synthetic_edges", "celebrity_edges", "load"]

DATASETS = Path(__file__).resolve().parent.parent / "datasets"


def reed_edges(prefix: str = "reed") -> list[tuple[str, str]]:
    """Each undirected friendship becomes a mutual follow (as DeathStarBench loads it)."""
    edges = []
    for line in (DATASETS / "socfb-Reed98.edges").read_text().split("\n"):
        if line.strip():
            a, b = line.split()
            edges += [(f"{prefix}{a}", f"{prefix}{b}"), (f"{prefix}{b}", f"{prefix}{a}")]
    return edges


def synthetic_edges(users: int, seed: int, mean_following: int = 20, prefix: str = "u") -> list[tuple[str, str]]:
    """Power-law popularity: followee i is picked with weight 1 / (i + 1) ** 1.1 (Zipf-like)."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) ** 1.1 for i in range(users)]
    names = [f"{prefix}{i}" for i in range(users)]
    edges = set()
    for follower in range(users):
        count = max(1, int(rng.expovariate(1 / mean_following)))
        for followee in rng.choices(range(users), weights, k=count):
            if followee != follower:
                edges.add((names[follower], names[followee]))
    return sorted(edges)


def readers_following_no_hot_user(edges: list[tuple[str, str]], threshold: int) -> list[str]:
    """Followers whose every followee has fewer than `threshold` followers: their timeline read is
    the common case, one router -> node call with no read-time merge."""
    followers: dict[str, int] = {}
    for _, followee in edges:
        followers[followee] = followers.get(followee, 0) + 1
    hot = {user for user, count in followers.items() if count >= threshold}
    follows_hot = {follower for follower, followee in edges if followee in hot}
    return sorted({follower for follower, _ in edges} - follows_hot)


def celebrity_edges(celebrity: str, followers: int, pool: str = "fan") -> Iterator[tuple[str, str]]:
    for i in range(followers):
        yield (f"{pool}{i}", celebrity)


def load(
    client: FeedClient,
    edges: Iterator[tuple[str, str]] | list[tuple[str, str]],
    total: int,
    label: str,
    batch: int = 50_000,
) -> float:
    """Bulk-loads edges through Admin.BulkFollow with a progress bar; returns edges/s."""
    import time

    started = time.perf_counter()
    chunk: list[tuple[str, str]] = []
    with Progress(transient=True) as bar:
        task = bar.add_task(f"loading {label}", total=total)
        for edge in edges:
            chunk.append(edge)
            if len(chunk) >= batch:
                _bulk_follow(client, chunk)
                bar.advance(task, len(chunk))
                chunk = []
        if chunk:
            _bulk_follow(client, chunk)
            bar.advance(task, len(chunk))
    return total / (time.perf_counter() - started)


def _bulk_follow(client: FeedClient, chunk: list[tuple[str, str]], attempts: int = 3) -> None:
    """BulkFollow is idempotent: a chunk a busy replica timed out on is sent again."""
    import time

    for attempt in range(attempts):
        try:
            client.bulk_follow(chunk)
            return
        except Unavailable as exc:
            if attempt == attempts - 1:
                raise
            print(f"    bulk follow retried ({exc.message[:120]})", flush=True)
            time.sleep(1.0)
