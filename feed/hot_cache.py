"""A bounded cache of hot users' newest posts, so a celebrity's post is read from memory, not from
S salted partitions, on every follower's timeline read.

Bounded twice: at most ``max_entries`` users (least recently used evicted first) and at most
``posts_per_user`` posts each, so memory does not grow with the number of hot users or posts. An
entry older than ``ttl_ms`` is not served: posts and deletes made through other routers show up
within the TTL. Posts and deletes through this router update the entry at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from common import post_bytes
from common.post_bytes import IdAndPost
from protos import feed_pb2

__all__ = ["HotPostCache", "CachedPosts"]


@dataclass
class CachedPosts:
    posts: list[IdAndPost]  # newest first
    complete: bool  # the author has no posts older than the last one here
    fetched_at: float = field(default=0.0)

    def below(self, before_id: int, limit: int) -> list[IdAndPost] | None:
        """The newest `limit` posts with id < before_id (all if before_id is 0), or None when the
        cache cannot tell (it may not hold enough old posts)."""
        posts = self.posts if not before_id else [p for p in self.posts if p[0] < before_id]
        if len(posts) >= limit or self.complete:
            return posts[:limit]
        return None


class HotPostCache:
    def __init__(
        self,
        max_entries: int,
        posts_per_user: int,
        ttl_ms: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.posts_per_user = posts_per_user
        self.ttl_s = ttl_ms / 1000
        self._clock = clock
        self._entries: OrderedDict[str, CachedPosts] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, author: str) -> CachedPosts | None:
        entry = self._entries.get(author)
        if entry is None or self._clock() - entry.fetched_at > self.ttl_s:
            self.misses += 1
            return None
        self._entries.move_to_end(author)
        self.hits += 1
        return entry

    def put(self, author: str, newest_first: list[bytes], complete: bool) -> CachedPosts:
        """Caches an author's newest posts (encoded); returns the entry (usable even with a zero TTL)."""
        posts = [(post_bytes.post_id(raw), raw) for raw in newest_first[: self.posts_per_user]]
        complete = complete and len(posts) == len(newest_first)
        entry = self._entries.get(author)
        if entry is not None and entry.complete == complete and entry.posts == posts:
            # Reloaded unchanged (every TTL): the same entry, fresh again, so the timeline pages
            # merged from it are still given as they are (feed/merged_pages.py).
            entry.fetched_at = self._clock()
        else:
            entry = self._entries[author] = CachedPosts(posts, complete, self._clock())
        self._entries.move_to_end(author)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    def add_post(self, post: feed_pb2.Post) -> None:
        """A post by a hot author through this router: visible here at once."""
        entry = self._entries.get(post.author)
        if entry is None or any(p[0] == post.id for p in entry.posts):
            return
        # A new entry, not a changed one: a timeline page merged from the old entry is kept by the
        # entry's identity (feed/merged_pages.py).
        posts = sorted([(post.id, post.SerializeToString()), *entry.posts], key=lambda p: p[0], reverse=True)
        complete = entry.complete and len(posts) <= self.posts_per_user
        self._entries[post.author] = CachedPosts(posts[: self.posts_per_user], complete, entry.fetched_at)

    def remove_post(self, author: str, post_id: int) -> None:
        """A delete through this router: the entry may now hold too few posts, so drop it."""
        entry = self._entries.get(author)
        if entry is not None and any(p[0] == post_id for p in entry.posts):
            del self._entries[author]
