"""Who watches which timeline in this process, and the wake-up when one changes.

A node calls `changed(users)` whenever it writes their timelines (an inbox entry delivered or
removed, an unfollow, a user's own post stored or deleted: node/inboxes.py, node/posts.py); each
open WatchTimeline stream of those users wakes and reads what is new (feed/timeline_watch.py). The
hub holds a flag per stream, never the posts, so a burst of deliveries costs a watcher one read.
A router hears of no writes: its streams read on a timer instead. Deliveries may be applied off the
event loop (a transfer's thread), so a wake-up from another thread is handed to the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge

from common.errors import ResourceExhausted

__all__ = ["WatchHub", "WATCH_STREAMS", "WATCH_EVENTS"]

WATCH_STREAMS = Gauge("feedring_watch_streams", "Open WatchTimeline streams this process serves")
WATCH_EVENTS = Counter("feedring_watch_events", "Events sent on WatchTimeline streams, by kind", ["kind"])


class WatchHub:
    def __init__(self, max_streams: int, hears_writes: bool) -> None:
        self.max_streams = max_streams
        self.hears_writes = hears_writes  # a node, whose own writes wake its streams
        self.watched: dict[str, set[asyncio.Event]] = {}  # read by the write path: keep it a dict
        self.streams = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0

    @contextmanager
    def stream(self, user: str) -> Iterator[asyncio.Event]:
        """One open stream of `user`'s timeline: the event is set when it may have changed."""
        if self.streams >= self.max_streams:
            raise ResourceExhausted(
                f"this process serves {self.streams} watch streams (limits.max_watch_streams): "
                "try another replica, or again later"
            )
        if self._loop is None:
            self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        wake = asyncio.Event()
        self.watched.setdefault(user, set()).add(wake)
        self.streams += 1
        WATCH_STREAMS.inc()
        try:
            yield wake
        finally:
            self.streams -= 1
            WATCH_STREAMS.dec()
            events = self.watched.get(user)
            if events is not None:
                events.discard(wake)
                if not events:
                    del self.watched[user]

    def changed(self, users: Iterable[str]) -> None:
        """The write path's call: cheap when nobody watches here (one dict test per user)."""
        watched = self.watched
        if not watched:
            return
        woken = [event for user in users for event in watched.get(user, ())]
        if not woken:
            return
        if threading.get_ident() == self._loop_thread or self._loop is None:
            for event in woken:
                event.set()
        else:
            for event in woken:
                self._loop.call_soon_threadsafe(event.set)
