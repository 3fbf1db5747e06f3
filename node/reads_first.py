"""Reads first: fan-out writes take a bounded share of a node's event loop while reads are served.

A node's reads and its fan-out share one event loop (and two cores with every other process).
Inbox writes are applied in slices (node/local_writes.py); each slice runs under ``ReadsFirst.slice()``:
- one background slice at a time, so a read waits behind at most one slice, however many
  deliveries and replica batches are in progress;
- while reads are arriving (one served in the last ``READS_ACTIVE_S``), a slice that took t seconds
  is followed by a pause of t * (1 - share) / share, in which only reads and other foreground work
  run: fan-out gets at most ``share`` of the loop;
- the share grows with the age of the post being delivered, to all of the loop once it is
  ``full_speed_after_s`` old: reads come first while fan-out keeps up, and fan-out lag stays
  bounded when it does not (a fixed share let a backlog grow without end under a steady load);
- with no reads, slices only yield between them and fan-out runs at full speed.

A user sees a post a moment later without noticing; they notice every slow timeline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["ReadsFirst", "READS_ACTIVE_S"]

READS_ACTIVE_S = 0.05  # reads are "arriving" if one was served this recently
_MAX_PAUSE_S = 0.05  # one slice never holds fan-out back longer than this


class ReadsFirst:
    def __init__(self, share: float = 0.3, full_speed_after_s: float = 2.0) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError("the background share is in (0, 1]")
        self.share = share
        self.full_speed_after_s = full_speed_after_s
        self._last_read = -1.0
        self._lock = asyncio.Lock()
        self.background_s = 0.0  # time spent in background slices since start
        self.paused_s = 0.0  # time background work stood back for reads

    def read_served(self) -> None:
        self._last_read = time.monotonic()

    def reads_active(self) -> bool:
        return time.monotonic() - self._last_read < READS_ACTIVE_S

    def share_for(self, age_s: float) -> float:
        """Fan-out's share of the loop for a post `age_s` old (since it was posted)."""
        if self.full_speed_after_s <= 0:
            return 1.0
        return self.share + (1.0 - self.share) * min(max(age_s, 0.0) / self.full_speed_after_s, 1.0)

    @asynccontextmanager
    async def slice(self, age_s: float = 0.0) -> AsyncIterator[None]:
        """Runs one background slice of delivering a post `age_s` old; yields the loop after it,
        longer if reads are arriving."""
        async with self._lock:
            started = time.monotonic()
            try:
                yield
            finally:
                spent = time.monotonic() - started
                self.background_s += spent
                pause = 0.0
                share = self.share_for(age_s)
                if share < 1.0 and self.reads_active():
                    pause = min(spent * (1.0 - share) / share, _MAX_PAUSE_S)
                    self.paused_s += pause
                await asyncio.sleep(pause)
