"""Timelines' first pages as merged with hot users' posts, kept by a node that coordinates reads.

A reader who follows hot users gets a page merged from several sources: its inbox reply, an entry of
the hot-post cache per hot followee, and (a hot reader) the nodes' replies for its own salted posts.
Merging them costs more than reading them (~35-70 us: every post's id parsed, a heap over all the
lists). On a node, the inbox and posts replies of a first page come from the node's own cache
(node/timeline_cache.py) as the same objects for as long as nothing under them changed, and the
hot-post cache replaces an entry rather than changing it (feed/hot_cache.py). So a page merged from
the very same source objects is the page merged before: it is kept, keyed by the reader, with the
sources it came from, and given again when every source is the same object. A source that changed
is a new object, and the page is merged anew.

Objects, not copies: a kept page holds its sources, so none can be freed and its identity reused.
A router's replies arrive over gRPC as new objects every time: routers keep no pages (capacity 0).
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["MergedPages"]


class MergedPages:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity  # readers whose merged first page is kept; 0: none
        self.hits = 0
        self._pages: OrderedDict[str, tuple[int, list[object], list[bytes]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pages)

    def get(self, reader: str, limit: int, sources: list[object]) -> list[bytes] | None:
        """The page merged for `reader` from exactly these source objects, if kept."""
        kept = self._pages.get(reader)
        if kept is None or kept[0] != limit:
            return None
        kept_sources = kept[1]
        if len(kept_sources) != len(sources) or any(a is not b for a, b in zip(kept_sources, sources, strict=True)):
            return None
        self._pages.move_to_end(reader)
        self.hits += 1
        return kept[2]

    def put(self, reader: str, limit: int, sources: list[object], page: list[bytes]) -> None:
        if not self.capacity:
            return
        self._pages[reader] = (limit, sources, page)
        self._pages.move_to_end(reader)
        if len(self._pages) > self.capacity:
            self._pages.popitem(last=False)
