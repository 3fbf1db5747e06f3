"""WatchTimeline: a home timeline as it changes, computed from the timeline itself.

A stream never queues posts: it keeps the ids of the recent entries it has sent (the window: those
within LOOKBACK_MS of the newest) and, whenever the timeline may have changed, reads the entries
newer than the window's floor and sends what it has not sent, oldest first, then a removal for
each id of the window that is gone. So a burst of deliveries costs one read, a slow reader costs
nothing but its place (what it has not taken is read again when it takes it), and an entry that
lands late (its author's node was down a moment) is still sent if it is within the window.

When to read: on a node the write path wakes the stream (feed/watch_hub.py) when the user's inbox or
own posts change, and a timer reads again every SAFETY_READ_S; hot followees' posts are not
written to the inbox, so while there are some the stream checks them every HOT_CHECK_S (from the
hot-post cache). A router hears of no writes, so its streams read every ROUTER_READ_S.

Order: posts go out as they are found, oldest first among those found together; a stream asking for
order_hold_ms holds each post until its id is that old and sends them in id order (_HoldBack).

Resuming: a stream that starts with after_id sends the entries newer than it, and counts those
within LOOKBACK_MS below it as the client's already (a client that resumes from its last id minus
LOOKBACK_MS, as FeedClient does, and drops repeats, misses nothing that landed late while it was
away). after_id 0 starts at the newest entry: only what lands from then on is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
from collections.abc import AsyncGenerator

from common import post_bytes
from common.post_bytes import IdAndPost
from feed.post_ids import ids_in_ms, now_as_id
from feed.timeline import TimelineReader
from feed.watch_hub import WATCH_EVENTS, WatchHub
from protos import feed_pb2

__all__ = ["TimelineWatch", "LOOKBACK_MS"]

_SENT_POSTS, _SENT_REMOVALS = WATCH_EVENTS.labels("post"), WATCH_EVENTS.labels("removal")

LOOKBACK_MS = 30_000  # feed.proto promises this: keep them equal
PAGE = 200
SAFETY_READ_S = 10.0
HOT_CHECK_S = 1.0
ROUTER_READ_S = 1.0


class TimelineWatch:
    def __init__(self, reader: TimelineReader, hub: WatchHub, timeline_cap: int) -> None:
        self.reader = reader
        self.hub = hub
        self.timeline_cap = timeline_cap
        self.lookback = ids_in_ms(LOOKBACK_MS)

    async def events(self, user: str, after_id: int, hold_ms: int = 0) -> AsyncGenerator[feed_pb2.TimelineEvent, None]:
        """`hold_ms` > 0: posts in strict id order, each held until its id is that old (_HoldBack)."""
        held = _HoldBack(hold_ms)
        with self.hub.stream(user) as wake:
            if not after_id:
                newest, _ = await self.reader.read_with_followees(user, 1, 0)
                after_id = post_bytes.post_id(newest[0]) if newest else 0
            window = _Window(after_id, self.lookback)
            posts, hot = await self._read(user, window.floor)
            first = window.update(posts, complete=len(posts) < self.timeline_cap, known_up_to=after_id)
            for event in held.order(first):
                yield event
            loop = asyncio.get_running_loop()
            last_full = loop.time()
            while True:
                if not self.hub.hears_writes:
                    timeout = ROUTER_READ_S
                else:
                    timeout = HOT_CHECK_S if hot else SAFETY_READ_S
                woken = await _wait(wake, min(timeout, held.next_due_s()))
                if woken or not self.hub.hears_writes or loop.time() - last_full >= SAFETY_READ_S:
                    last_full = loop.time()
                    posts, hot = await self._read(user, window.floor)
                    events = window.update(posts, complete=len(posts) < self.timeline_cap)
                elif held.next_due_s() > 0:
                    events = window.update(await self._hot_posts(hot, window.floor), complete=False)
                else:
                    events = []  # only held posts fell due
                for event in held.order(events):
                    yield event

    async def _read(self, user: str, floor: int) -> tuple[list[IdAndPost], list[str]]:
        """Every entry newer than `floor`, newest first, and the user's hot followees."""
        out: list[IdAndPost] = []
        before = 0
        while True:
            raws, hot = await self.reader.read_with_followees(user, PAGE, before, floor)
            out += post_bytes.with_ids(raws)
            if len(raws) < PAGE or len(out) >= self.timeline_cap:
                return out, hot
            before = out[-1][0]

    async def _hot_posts(self, hot: list[str], floor: int) -> list[IdAndPost]:
        found = await asyncio.gather(*(self.reader.recent_posts(author, PAGE, 0) for author in hot))
        return [p for posts in found for p in posts if p[0] > floor]


async def _wait(wake: asyncio.Event, timeout_s: float) -> bool:
    """True if woken (a write to the timeline), False if the time ran out."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout_s)
    woken = wake.is_set()
    wake.clear()
    return woken


class _HoldBack:
    """Strict id order for a stream that asks for it (WatchTimelineRequest.order_hold_ms): each post
    waits until its id is `hold_ms` old, then goes out with every held post older than it. A post
    landing later than that goes out at once (the one exception to the order); removals are never
    held, and a held post that is removed is dropped unsent. With `hold_ms` 0 it passes all through."""

    def __init__(self, hold_ms: int) -> None:
        self.hold_ids = ids_in_ms(hold_ms)
        self.heap: list[tuple[int, feed_pb2.TimelineEvent]] = []

    def next_due_s(self) -> float:
        """Seconds until the oldest held post falls due (inf: none held)."""
        if not self.heap:
            return math.inf
        return max(self.heap[0][0] + self.hold_ids - now_as_id(), 0) / ids_in_ms(1000)

    def order(self, events: list[feed_pb2.TimelineEvent]) -> list[feed_pb2.TimelineEvent]:
        if not self.hold_ids:
            return events
        out = []
        for event in events:
            if event.HasField("post"):
                heapq.heappush(self.heap, (event.post.id, event))
            elif any(post_id == event.deleted_id for post_id, _ in self.heap):
                self.heap = [item for item in self.heap if item[0] != event.deleted_id]
                heapq.heapify(self.heap)
            else:
                out.append(event)
        due = now_as_id() - self.hold_ids
        while self.heap and self.heap[0][0] <= due:
            out.append(heapq.heappop(self.heap)[1])
        return out


class _Window:
    """The ids this stream has sent (or counts as the client's) within `lookback` of the newest."""

    def __init__(self, after_id: int, lookback: int) -> None:
        self.lookback = lookback
        self.high = after_id
        self.ids: set[int] = set()

    @property
    def floor(self) -> int:
        return max(self.high - self.lookback, 0)

    def update(self, posts: list[IdAndPost], complete: bool, known_up_to: int = 0) -> list[feed_pb2.TimelineEvent]:
        """The events that bring the client from what it has to `posts` (entries newer than the
        floor; `complete`: all of them, so an id of the window that is not there is gone)."""
        floor = self.floor
        present = {post_id for post_id, _ in posts}
        events = []
        if complete:
            for gone in sorted(i for i in self.ids if i > floor and i not in present):
                self.ids.discard(gone)
                events.append(feed_pb2.TimelineEvent(deleted_id=gone))
                _SENT_REMOVALS.inc()
        for post_id, raw in sorted(posts):
            if post_id in self.ids or post_id <= floor:
                continue
            self.ids.add(post_id)
            if post_id > known_up_to:
                events.append(feed_pb2.TimelineEvent(post=feed_pb2.Post.FromString(raw)))
                _SENT_POSTS.inc()
            self.high = max(self.high, post_id)
        if self.floor > floor:
            self.ids = {i for i in self.ids if i > self.floor}
        return events
