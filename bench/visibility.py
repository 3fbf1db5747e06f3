"""Post acknowledged -> visible in every follower's timeline, measured two ways.

`by_followers` (the headline): every follower polls its own timeline as its app would, all at
once on one event loop (AsyncFeedClient, map-aware), from the moment the post is acknowledged; a
post is visible when the last follower's read shows it. The figure is an upper bound: a read that
shows the post may have been sent a moment after the post landed, up to one read late. Beside it:
- the pollers' floor: right after each probe, one more poll by every follower (the post there
  already), the time the pollers themselves take. On these two cores a read costs its client
  ~0.25 ms of CPU and its node about as much, so a round of 10 concurrent reads takes ~6 ms
  whatever the delivery does;
- a lower bound: a follower's last read that did not show the post was sent before the post became
  visible to that follower, so the latest such send (the acknowledgement if no read missed) bounds
  "visible to all" from below. The share of posts that every follower's first read after the
  acknowledgement showed (`first_reads_showed_it`) says how often delivery beat the reads: then
  the headline is the time of one round of reads, not of the delivery.

`thread_pool` (runs up to 2026-12-06): the followers polled in rounds from a pool of threads of one
process, each round ending when its slowest read did. The threads share one interpreter lock, so a
round of 10 reads took 10-25 ms of the client's own time even when the post had landed before the
acknowledgement (traced at idle: the inbox writes reached their quorum within 1 ms of the ack, the
first round ended 12-15 ms later). It is kept beside the headline so earlier runs compare.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from bench.stats import summary
from client import AsyncFeedClient, FeedClient

__all__ = ["by_followers", "thread_pool"]

POLLS_IN_FLIGHT = 32  # reads outstanding at once: more followers take turns, as in the thread pool
GIVE_UP_S = 10.0


def by_followers(target: str, token: str, author: str, fans: list[str], posts: int) -> dict[str, float]:
    """`posts` posts one after another, each timed until every follower's own poll shows it."""
    return asyncio.run(_by_followers(target, token, author, fans, posts))


async def _by_followers(target: str, token: str, author: str, fans: list[str], posts: int) -> dict[str, float]:
    lags, lower, rounds, unseen, at_once = [], [], [], 0, 0
    async with AsyncFeedClient(target, token=token, timeout_s=30) as client:
        slots = asyncio.Semaphore(POLLS_IN_FLIGHT)
        for fan in fans[:POLLS_IN_FLIGHT]:  # open every node's channel before the clock runs
            await client.timeline(fan, page_size=1)
        for i in range(posts):
            post = await client.post(author, f"visibility probe {i}")
            acked = time.perf_counter()

            async def seen_by(fan: str, post_id: int = post.id, acked: float = acked) -> tuple[float, float] | None:
                """(when a read sent after the last miss showed the post, when that last miss was sent)."""
                missed_at = acked  # no miss yet: visible no earlier than the acknowledgement
                while time.perf_counter() - acked < GIVE_UP_S:
                    async with slots:
                        sent = time.perf_counter()
                        page = await client.timeline(fan, page_size=1)
                    if page.items and page.items[0].id == post_id:
                        return time.perf_counter(), missed_at
                    missed_at = sent
                return None

            seen = await asyncio.gather(*(seen_by(fan) for fan in fans))
            landed = [t for t in seen if t is not None]
            unseen += len(seen) - len(landed)
            lags.append(max((t for t, _ in landed), default=acked + GIVE_UP_S) - acked)
            lower.append(max((m for _, m in landed), default=acked) - acked)
            at_once += len(landed) == len(fans) and all(m == acked for _, m in landed)
            started = time.perf_counter()  # the floor: every follower polls once, the post there already
            await asyncio.gather(*(_poll_once(client, slots, fan) for fan in fans))
            rounds.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
    floor = summary(rounds)
    at_least = summary(lower)
    return {
        **summary(lags),
        "lower_bound_p50_ms": at_least["p50_ms"],
        "lower_bound_p99_ms": at_least["p99_ms"],
        "first_reads_showed_it": at_once / posts,  # share of posts every follower's first read showed
        "followers": float(len(fans)),
        "unseen": float(unseen),
        "poll_round_p50_ms": floor["p50_ms"],
        "poll_round_p99_ms": floor["p99_ms"],
    }


async def _poll_once(client: AsyncFeedClient, slots: asyncio.Semaphore, fan: str) -> None:
    async with slots:
        await client.timeline(fan, page_size=1)


def thread_pool(client: FeedClient, author: str, fans: list[str], posts: int) -> dict[str, float]:
    """The earlier method: followers polled in rounds by a pool of reader threads (map-aware)."""
    lags = []
    with ThreadPoolExecutor(min(len(fans), POLLS_IN_FLIGHT)) as readers:
        for i in range(posts):
            post = client.post(author, f"visibility probe {i}")
            acked = time.perf_counter()
            pending = list(fans)
            newest = [post]
            while pending and time.perf_counter() - acked < GIVE_UP_S:
                seen = readers.map(lambda f, n=newest: client.timeline(f, page_size=1).items[:1] == n, pending)
                pending = [f for f, ok in zip(pending, seen, strict=True) if not ok]
            lags.append(time.perf_counter() - acked)
            time.sleep(0.02)
    return {**summary(lags), "followers": float(len(fans))}
