"""Live timelines: how soon an open app sees a post, and what an open stream costs a node.

N watchers (WatchTimeline streams, AsyncFeedClient on one event loop in this process) on the
timelines of N followers of one author, every stream opened on the same node (so one process
serves N streams); the author posts one post at a time and each watcher stamps when the post
reaches it. Reported per N: post acknowledged -> seen, p50/p99 over every (post, watcher) pair,
and -> seen by all N (per post); the same for a hot author (its posts are not fanned out: streams
find them on their hot-followee check, every HOT_CHECK_S, through the hot-post cache); and the
node's RSS per open stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import defaultdict

from bench import graphs
from bench.processes import server_pids
from bench.stats import summary
from client import AsyncFeedClient, FeedClient, Post
from ops.local_cluster import LocalCluster

__all__ = ["watch_latency"]


def _rss_bytes(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class _Streams:
    """N open streams on one Feed address, recording when each post reached each of them."""

    def __init__(self, address: str, token: str, users: list[str]) -> None:
        self.users = users
        self.arrivals: dict[int, list[float]] = defaultdict(list)  # post id -> perf_counter per stream
        self.errors: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._main = asyncio.run_coroutine_threadsafe(self._start(address, token), self._loop).result()

    async def _start(self, address: str, token: str) -> asyncio.Task[None]:
        return asyncio.create_task(self._run(address, token))

    async def _stop(self) -> None:
        self._main.cancel()  # closes the client, so the node frees the streams' slots at once
        with contextlib.suppress(asyncio.CancelledError):
            await self._main

    async def _run(self, address: str, token: str) -> None:
        async with AsyncFeedClient(address, token=token, map_aware=False, timeout_s=60) as feed:
            ended = await asyncio.gather(*(self._one(feed, i) for i in range(len(self.users))), return_exceptions=True)
            self.errors = [repr(e) for e in ended if isinstance(e, BaseException)]

    async def _one(self, feed: AsyncFeedClient, i: int) -> None:
        arrivals = self.arrivals
        async for event in feed.watch_timeline(self.users[i]):
            if isinstance(event, Post):
                arrivals[event.id].append(time.perf_counter())

    def seen_by(self, post_id: int) -> int:
        return len(self.arrivals.get(post_id, ()))

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def _probe(client: FeedClient, author: str, streams: _Streams, posts: int, wait_s: float) -> dict[str, float]:
    each: list[float] = []
    everyone: list[float] = []
    missed = 0
    for i in range(posts):
        post = client.post(author, f"watch probe {i}")
        acked = time.perf_counter()
        n = len(streams.users)
        # Polled gently: this thread shares the GIL with the event loop the streams run on.
        while streams.seen_by(post.id) < n and time.perf_counter() - acked < wait_s:
            time.sleep(0.01)
        arrived = [t - acked for t in streams.arrivals.get(post.id, [])]
        missed += n - len(arrived)
        each += arrived
        if len(arrived) == n:
            everyone.append(max(arrived))
        time.sleep(0.05)
    lags = summary(each)
    return {
        "p50_ms": lags["p50_ms"],
        "p99_ms": lags["p99_ms"],
        "all_p50_ms": summary(everyone)["p50_ms"] if everyone else float("nan"),
        "all_p99_ms": summary(everyone)["p99_ms"] if everyone else float("nan"),
        "missed": float(missed),
    }


def watch_latency(
    cluster: LocalCluster, client: FeedClient, hot_author: str, counts: tuple[int, ...], posts: int
) -> dict[str, dict[str, float]]:
    node = cluster.config.nodes[0]
    pid = server_pids(cluster)[node.id]
    out: dict[str, dict[str, float]] = {}
    for n in counts:
        author, fans = f"watched{n}", [f"watch{n}-fan{i}" for i in range(n)]
        hot_fans = [f"watch{n}-hotfan{i}" for i in range(n)]
        graphs.load(client, ((f, author) for f in fans), n, f"{n} watchers' follows")
        graphs.load(client, ((f, hot_author) for f in hot_fans), n, f"{n} hot watchers' follows")
        time.sleep(1.0)
        for label, users, poster in (("plain", fans, author), ("hot", hot_fans, hot_author)):
            rss_before = _rss_bytes(pid)
            streams = _Streams(node.feed, cluster.secret, users)
            try:
                time.sleep(2.0)
                warm = _probe(client, poster, streams, 1, wait_s=60.0)  # every stream is open once all see it
                if warm["missed"]:
                    raise RuntimeError(
                        f"{warm['missed']:.0f} of {n} watch streams did not open within 60 s: {streams.errors[:3]}"
                    )
                rss_open = _rss_bytes(pid)
                result = _probe(client, poster, streams, posts, wait_s=10.0)
                result["node_rss_kib_per_stream"] = (rss_open - rss_before) / 1024 / n
                out[f"{label} N={n}"] = result
            finally:
                streams.close()
            time.sleep(1.0)  # the node notices the closed streams
    return out
