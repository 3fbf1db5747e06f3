"""Readers who went away, seen from the read path: note each read now and then, and rebuild the
timeline of a reader coming back (node/readers.py has the node side).

A node skips inbox inserts for a reader whose last read is older than `fanout.inactive_after`. So
every timeline read looks at the reader's record (ReadInbox returns it, at no extra cost):
- recent: nothing to do; older than a twentieth of inactive_after: record this read (TouchReader,
  sent without waiting), so an active reader's record is never near the limit; no record at all
  (the user never followed anyone): nothing to do either;
- older than nine tenths of inactive_after (the margin covers a sweep's timing and clock skew
  between processes), or a rebuild still marked under way: rebuild before answering. The record
  is marked "rebuilding" first (fan-out resumes for the reader at once, so what is posted from
  then on is delivered), then the newest `timeline_cap` posts of every author the reader follows
  are read (one ReadPosts per node, each merging its authors' keys lazily) and written into the
  inbox, then the record is marked done. A rebuild that fails midway fails the read with the
  storage error (never a partial timeline); the mark stays, so the next read rebuilds again.
Hot followees are merged at read anyway and are not copied. The bound: a reader following N
authors costs one ListEdges page per 5,000 followees, one ReadPosts per node and one InsertInbox
of at most timeline_cap posts; measured in `make bench` (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging
import time

from common import salting
from common.config import ClusterConfig
from common.storage_client import StorageClient
from feed.hot_users import HotUsers
from feed.salted_reads import SaltedReads
from protos import feed_pb2, storage_pb2

__all__ = ["ReaderActivity", "FOLLOWING_PAGE"]

log = logging.getLogger(__name__)

FOLLOWING_PAGE = 5000


class ReaderActivity:
    def __init__(self, config: ClusterConfig, storage: StorageClient, reads: SaltedReads, hot: HotUsers) -> None:
        self.storage = storage
        self.reads = reads
        self.hot = hot
        self.after_ms = int(config.fanout.inactive_after_s * 1000)  # 0: off
        self.cap = config.limits.timeline_cap
        self.buckets = config.hot.salt_buckets
        self.rebuilds = 0  # timelines rebuilt by this process since start
        self._rebuilding: dict[str, asyncio.Task[None]] = {}
        self._touches: set[asyncio.Task[None]] = set()

    def returning(self, inbox: storage_pb2.ReadInboxResponse) -> bool:
        """Whether the reader's inbox may have missed fan-out: rebuild it before answering."""
        if not self.after_ms or not inbox.last_read_ms:
            return False
        return inbox.rebuilding or _now_ms() - inbox.last_read_ms > self.after_ms - self.after_ms // 10

    def read_served(self, user: str, inbox: storage_pb2.ReadInboxResponse) -> None:
        """Records the read if the record is older than a twentieth of inactive_after. A user with
        no record has never followed anyone (a follow writes it): fan-out has nothing to skip for
        them, so their reads write nothing (a read of any name used to leave a replicated record)."""
        if self.after_ms and inbox.last_read_ms and _now_ms() - inbox.last_read_ms > self.after_ms // 20:
            task = asyncio.ensure_future(self._touch(user, _now_ms(), rebuilding=False))
            self._touches.add(task)
            task.add_done_callback(self._touched)

    def _touched(self, task: asyncio.Task[None]) -> None:
        self._touches.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("recording a timeline read failed (the next read records it): %s", task.exception())

    async def rebuild(self, user: str, hot_followees: list[str]) -> None:
        """Fills the reader's inbox again; concurrent reads of one reader here share one rebuild."""
        task = self._rebuilding.get(user)
        if task is None:
            task = asyncio.ensure_future(self._rebuild(user, hot_followees))
            self._rebuilding[user] = task
            task.add_done_callback(lambda _t: self._rebuilding.pop(user, None))
        await asyncio.shield(task)

    async def _rebuild(self, user: str, hot_followees: list[str]) -> None:
        started = _now_ms()
        await self._touch(user, started, rebuilding=True)
        merged_at_read = set(hot_followees)
        authors = [a for a in await self._following(user) if a not in merged_at_read]
        author_keys = [k for a in authors for k in salting.keys_of(a, self.hot.state(a), self.buckets)]
        newest = await self.reads.newest_over(author_keys, self.cap) if author_keys else []
        if newest:
            posts = [feed_pb2.Post.FromString(raw) for raw in newest]
            await self.storage.insert_inbox.by_key(user, storage_pb2.InsertInboxRequest(posts=posts, consumers=[user]))
        await self._touch(user, started, rebuilding=False)
        self.rebuilds += 1
        log.info(
            "rebuilt %s's timeline: %d posts of %d followed authors in %.0f ms",
            user,
            len(newest),
            len(authors),
            _now_ms() - started,
        )

    async def _following(self, user: str) -> list[str]:
        out: list[str] = []
        after = ""
        while True:
            page = await self.storage.list_edges.by_key(
                user,
                storage_pb2.ListEdgesRequest(
                    direction=storage_pb2.FOLLOWING, user_key=user, after=after, limit=FOLLOWING_PAGE
                ),
            )
            out += page.users
            if len(page.users) < FOLLOWING_PAGE:
                return out
            after = page.users[-1]

    async def _touch(self, user: str, read_ms: int, rebuilding: bool) -> None:
        await self.storage.touch_reader.by_key(
            user, storage_pb2.TouchReaderRequest(user=user, read_ms=read_ms, rebuilding=rebuilding)
        )


def _now_ms() -> int:
    return int(time.time() * 1000)
