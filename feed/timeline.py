"""Home timeline reads: the reader's inbox and own posts, merged with the recent posts of the hot
users it follows (after rebuilding the inbox of a reader who went away: feed/reader_activity.py).

The inbox, the reader's own posts under its home key (the same partition: the node merges them in)
and the reader's list of merged-at-read followees come from one RPC to the reader's node. Each hot
followee's posts come from the HotPostCache or, on a miss, from all of its salted keys at once (one
RPC per node), with concurrent misses for the same author sharing one read; a reader who was ever
hot has its own posts read from its salted keys too. Everything is filtered by the page cursor (ids
below it) and the refresh bound (ids above `after_id`) before merging, and the merge drops repeats
(a post may be both in the inbox and merged, around a transition), so pagination stays exact:
newest first, no duplicates, no gaps.
"""

from __future__ import annotations

import asyncio

from common import salting
from common.hot_state import HotState
from common.post_bytes import IdAndPost, merge_newest, with_ids
from common.storage_client import StorageClient
from feed.hot_cache import CachedPosts, HotPostCache
from feed.merged_pages import MergedPages
from feed.reader_activity import ReaderActivity
from feed.salted_reads import SaltedReads, newest_of
from protos import storage_pb2

__all__ = ["TimelineReader"]


class TimelineReader:
    def __init__(
        self,
        storage: StorageClient,
        reads: SaltedReads,
        cache: HotPostCache,
        activity: ReaderActivity,
        merged: MergedPages | None = None,
    ) -> None:
        self.storage = storage
        self.activity = activity  # readers who went away: their first read rebuilds the inbox
        self.reads = reads
        self.cache = cache
        self.merged = merged if merged is not None else MergedPages(0)  # first pages as merged (a node's)
        self._loading: dict[str, asyncio.Task[CachedPosts]] = {}

    async def read(self, user: str, limit: int, before_id: int, after_id: int = 0) -> list[bytes]:
        """The newest `limit` posts of the user's home timeline below `before_id` (0: from the
        newest) and above `after_id` (0: down to the oldest), encoded: in the common case (no hot
        followee) exactly the bytes the node stored, never decoded here."""
        return (await self.read_with_followees(user, limit, before_id, after_id))[0]

    async def read_with_followees(
        self, user: str, limit: int, before_id: int, after_id: int = 0
    ) -> tuple[list[bytes], list[str]]:
        """As read(), and the hot followees whose posts were merged in (feed/timeline_watch.py)."""
        request = storage_pb2.ReadInboxRequest(consumer=user, limit=limit, before_id=before_id, after_id=after_id)
        inbox = await self.storage.read_inbox.by_key(user, request)
        if self.activity.returning(inbox):
            # Away long enough that fan-out may have skipped them: rebuild first, then read.
            await self.activity.rebuild(user, list(inbox.hot_followees))
            inbox = await self.storage.read_inbox.by_key(user, request)
        else:
            self.activity.read_served(user, inbox)
        hot = list(inbox.hot_followees)
        if not hot and not inbox.own_posts_salted:
            return list(inbox.posts), hot
        # Hot followees' posts from the cache where it can tell, in this same step (the common
        # case: no task, no await); the rest are read at once, concurrently.
        sources: list[object] = [inbox]  # what the page is merged from (feed/merged_pages.py)
        merged = []
        reads = []
        for author in hot:
            entry = self.cache.get(author)  # counts one hit or one miss
            cached = entry.below(before_id, limit) if entry is not None else None
            if cached is not None:
                sources.append(entry)
                merged.append(cached)
            else:
                reads.append(self._read_recent(author, limit, before_id, entry))
        # The reader's own posts, if it was ever hot: not from the hot-post cache, which a post made
        # through another process updates only after its TTL (the author expects it at once).
        own_keys = salting.keys_of(user, HotState.HOT, self.reads.buckets) if inbox.own_posts_salted else []
        if reads or before_id or after_id:
            # Not a first page from cached sources: read what is missing, all at once, and merge.
            if own_keys:
                reads.append(self._own_posts(own_keys, limit, before_id))
            merged.insert(0, with_ids(inbox.posts))  # first: of a post in two lists, the inbox's is kept
            merged += await asyncio.gather(*reads)
            if after_id:
                merged = [[p for p in posts if p[0] > after_id] for posts in merged]
            return merge_newest(merged, limit), hot
        own = await self.reads.post_replies(own_keys, limit) if own_keys else []
        sources += own
        page = self.merged.get(user, limit, sources)
        if page is None:
            merged.insert(0, with_ids(inbox.posts))
            if own:
                merged.append(with_ids(newest_of(own, limit)))
            page = merge_newest(merged, limit)
            self.merged.put(user, limit, sources, page)
        return page, hot

    async def recent_posts(self, author: str, limit: int, before_id: int) -> list[IdAndPost]:
        """A hot author's newest `limit` posts below `before_id`, from the cache when it can tell."""
        entry = self.cache.get(author)
        cached = entry.below(before_id, limit) if entry is not None else None
        return cached if cached is not None else await self._read_recent(author, limit, before_id, entry)

    async def _read_recent(self, author: str, limit: int, before_id: int, entry: CachedPosts | None) -> list[IdAndPost]:
        """What the cache could not tell: a missing `entry` is loaded first; deeper than the
        cache holds, the salts are read directly."""
        if entry is None:
            cached = (await self._load(author)).below(before_id, limit)
            if cached is not None:
                return cached
        return with_ids(await self.reads.raw_posts(author, HotState.HOT, limit, before_id))

    async def _own_posts(self, own_keys: list[str], limit: int, before_id: int) -> list[IdAndPost]:
        return with_ids(newest_of(await self.reads.post_replies(own_keys, limit, before_id), limit))

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
