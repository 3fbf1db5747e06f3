"""A delivery record's pages of followers written several at a time, checkpointed in order.

One page at a time, a post to 9,000 followers was 18 rounds of a replicated write one after another:
its last follower waited for every round trip and every queue on the way, while the nodes had work
to spare (node/delivery.py). Here up to `size` pages are in flight at once; the record's checkpoint
moves past a page only once it and every page before it have landed, so a restart or a takeover
resumes at the first page not known to be written (pages written twice are harmless: inbox writes
are idempotent).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from typing import Any

__all__ = ["PagesInFlight"]


class PagesInFlight:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("at least one page must be in flight")
        self.size = size
        self._pages: deque[tuple[asyncio.Task[None], str]] = deque()  # oldest first, with its last follower

    def __len__(self) -> int:
        return len(self._pages)

    def full(self) -> bool:
        return len(self._pages) >= self.size

    def start(self, write: Coroutine[Any, Any, None], last: str) -> None:
        """Starts writing a page whose last follower is `last`."""
        self._pages.append((asyncio.ensure_future(write), last))

    async def oldest_landed(self) -> str:
        """Waits for the oldest page in flight; returns its last follower (every page before it has
        landed too), or raises what writing it raised."""
        task, last = self._pages.popleft()
        await task  # a cancelled wait cancels the page too
        return last

    def cancel(self) -> None:
        for task, _ in self._pages:
            task.cancel()

    async def close(self) -> None:
        """Waits for the pages still in flight to land or fail (or to end, cancelled): their errors
        are dropped, the record resumes from its checkpoint."""
        tasks = [task for task, _ in self._pages]
        self._pages.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
