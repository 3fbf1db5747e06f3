"""Lazy trimming of inboxes (node/inboxes.py): deliveries write blind and reads stop at the cap, so
what lies past the cap is garbage, collected here as background work that stands back for reads."""

from __future__ import annotations

import asyncio
import logging

from node.inboxes import Inboxes
from node.reads_first import ReadsFirst

__all__ = ["InboxTrimmer"]

log = logging.getLogger(__name__)

# A slice scans at most this many inboxes (~1,000 keys each, ~1 ms warm and more with cold caches:
# 16 a slice were among the longest stalls of a loaded node's event loop, measured).
CONSUMERS_PER_SLICE = 2


class InboxTrimmer:
    def __init__(self, inboxes: Inboxes, reads_first: ReadsFirst, every_s: float = 1.0) -> None:
        self.inboxes = inboxes
        self.reads_first = reads_first
        self.every_s = every_s
        self.trimmed = 0  # keys deleted since start

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.trim_noted()
            except Exception:  # the loop must survive anything: the next pass looks again
                log.exception("inbox trim failed")

    async def trim_noted(self) -> int:
        """Trims every inbox noted since the last pass; returns the keys deleted."""
        noted, self.inboxes.to_trim = sorted(self.inboxes.to_trim), set()
        deleted = 0
        for start in range(0, len(noted), CONSUMERS_PER_SLICE):
            async with self.reads_first.slice():
                for part, consumer in noted[start : start + CONSUMERS_PER_SLICE]:
                    deleted += self.inboxes.trim(part, consumer)
        self.trimmed += deleted
        return deleted
