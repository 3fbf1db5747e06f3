"""Versions for last-writer-wins data (follow edges, the hot-user registry), from a hybrid clock.

A version is milliseconds since the epoch shifted left 16 bits, plus a counter: later writes get
larger versions on one process, and a process that sees a larger version (a replica applying a
forwarded write) moves its clock past it. A coordinator whose clock is behind a version it has not
seen yet (after a failover, during a partition, before a hint replays) stamps a smaller one; the
replica holding the newer version says so and the coordinator stamps again above it
(node/replication.py), so causally later writes win whatever the wall clocks say.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["VersionClock"]


class VersionClock:
    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall  # seconds since the epoch (tests give a node a skewed one)
        self._last = 0

    def next(self) -> int:
        self._last = max(self._last + 1, int(self.wall() * 1000) << 16)
        return self._last

    def observe(self, version: int) -> None:
        self._last = max(self._last, version)

    def stamp(self, version: int) -> int:
        """The version a write applies with: the one its coordinator gave it (observed, so this
        clock moves past it), or a new one."""
        if version:
            self.observe(version)
            return version
        return self.next()
