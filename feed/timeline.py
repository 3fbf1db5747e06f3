"""Home timeline reads: the reader's inbox merged with the recent posts of the hot users it follows.

The inbox (fan-out on write) and the reader's list of merged-at-read followees come from one RPC
to the reader's node. Each hot followee's posts come from the router's HotPostCache or, on a miss,
from all of its salted keys at once (one RPC per node), with concurrent misses for the same author
sharing one read. Everything is filtered by the page cursor (ids below it) before merging, and the
merge drops repeats (a post may be both in the inbox and merged, around a transition), so
pagination stays exact: newest first, no duplicates, no gaps.
"""

from __future__ import annotations

import asyncio
import heapq

from common import post_bytes
from common.hot_state import HotState
from common.storage_client import StorageClient
from feed.hot_cache import CachedPosts, HotPostCache, IdAndPost
from feed.salted_reads import SaltedReads
from protos import storage_pb2

__all__ = ["TimelineReader", "merge_newest", "with_ids"]


def merge_newest(streams: list[list[IdAndPost]], limit: int) -> list[bytes]:
    """Merges newest-first lists of (id, encoded post) into encoded posts, without repeated ids, at
    most `limit` long."""
    out: list[bytes] = []
    last_id = None
    for post_id, raw in heapq.merge(*streams, key=_newest_first):
        if post_id != last_id:
            out.append(raw)
            last_id = post_id
            if len(out) >= limit:
                break
    return out


def _newest_first(entry: IdAndPost) -> int:
    return -entry[0]


def with_ids(raws: list[bytes]) -> list[IdAndPost]:
    return [(post_bytes.post_id(raw), raw) for raw in raws]


class TimelineReader:
    def __init__(self, storage: StorageClient, reads: SaltedReads, cache: HotPostCache) -> None:
        self.storage = storage
        self.reads = reads
        self.cache = cache
        self._loading: dict[str, asyncio.Task[CachedPosts]] = {}

    async def read(self, user: str, limit: int, before_id: int) -> list[bytes]:
        """The newest `limit` posts of the user's home timeline below `before_id`, encoded: in the
        common case (no hot followee) exactly the bytes the node stored, never decoded here."""
        inbox = await self.storage.read_inbox.by_key(
            user, storage_pb2.ReadInboxRequest(consumer=user, limit=limit, before_id=before_id)
        )
        if not inbox.hot_followees:
            return list(inbox.posts)
        hot_posts = await asyncio.gather(*(self.recent_posts(a, limit, before_id) for a in inbox.hot_followees))
        return merge_newest([with_ids(list(inbox.posts)), *hot_posts], limit)

    async def recent_posts(self, author: str, limit: int, before_id: int) -> list[IdAndPost]:
        """A hot author's newest `limit` posts below `before_id`, from the cache when it can tell."""
        entry = self.cache.get(author)  # counts one hit or one miss
        if entry is None:
            entry = await self._load(author)
        cached = entry.below(before_id, limit)
        if cached is not None:
            return cached
        # Deeper than the cache holds: read the salts directly.
        return with_ids(await self.reads.raw_posts(author, HotState.HOT, limit, before_id))

    async def _load(self, author: str) -> CachedPosts:
        """Reads an author's newest posts into the cache; concurrent misses share one read."""
        task = self._loading.get(author)
        if task is None:
            task = asyncio.create_task(self._fetch(author))
            self._loading[author] = task
            task.add_done_callback(lambda _t: self._loading.pop(author, None))
        return await asyncio.shield(task)

    async def _fetch(self, author: str) -> CachedPosts:
        size = self.cache.posts_per_user
        newest = await self.reads.raw_posts(author, HotState.HOT, size + 1)
        return self.cache.put(author, newest, complete=len(newest) <= size)
