"""Versions for last-writer-wins data (follow edges, the hot-user registry), from a hybrid clock.

A version is milliseconds since the epoch shifted left 16 bits, plus a counter: later writes get
larger versions on one process, and a process that sees a larger version (a replica applying a
forwarded write) moves its clock past it, so causally later writes win everywhere. Across processes
it is only as good as their clocks agree (one host here; NTP across hosts, see docs/failures.md).
"""

from __future__ import annotations

import time

__all__ = ["VersionClock"]


class VersionClock:
    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = max(self._last + 1, int(time.time() * 1000) << 16)
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
