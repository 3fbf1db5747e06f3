"""Reads first: fan-out writes take a bounded share of a node's event loop while reads are served.

A node's reads and its fan-out share one event loop (and two cores with every other process).
Inbox writes are applied in slices (node/local_writes.py); each slice runs under ``ReadsFirst.slice()``:
- one background slice at a time, so a read waits behind at most one slice, however many
  deliveries and replica batches are in progress;
- while reads are arriving (one served in the last ``READS_ACTIVE_S``), a slice that took t seconds
  owes a pause of t * (1 - share) / share, in which only reads and other foreground work run: fan-out
  gets at most ``share`` of the loop. The next slice waits it out; the write that ran the slice does
  not (a post to a few followers is one slice: its pause only delayed its own visibility);
- the share grows with the age of the post being delivered, to all of the loop once it is
  ``full_speed_after_s`` old: reads come first while fan-out keeps up, and fan-out lag stays
  bounded when it does not (a fixed share let a backlog grow without end under a steady load);
- with no reads, a slice only yields the loop when it comes right after another (a lone small
  slice, a post to a few followers, runs at once) and fan-out runs at full speed.

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
_BACK_TO_BACK_S = 0.002  # a slice starting this soon after another yields the loop first


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
        self._resume_at = 0.0  # the next slice starts no earlier (monotonic): the last one's pause
        self._ended = -1.0  # when the last slice ended (monotonic)

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
        """Runs one background slice of delivering a post `age_s` old. The pause a slice owes reads
        is taken before the next slice starts, not by the write that ran it: a small post's one
        slice answers at once (its pause made every 10-follower post wait on both sides of the
        replication, ~1.3 ms of the ~5 ms between a post and its quorum, measured), while a long
        delivery's slices still keep to their share of the loop."""
        async with self._lock:
            now = time.monotonic()
            owed = self._resume_at - now
            if owed > 0 and self.reads_active():
                self.paused_s += owed
                await asyncio.sleep(owed)
            elif now - self._ended < _BACK_TO_BACK_S:
                await asyncio.sleep(0)  # right after another slice: what waits for the loop goes first
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
                self._ended = time.monotonic()
                self._resume_at = self._ended + pause
