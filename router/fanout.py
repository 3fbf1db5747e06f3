"""Fan-out on write: copying a post into (or out of) every follower's inbox, after the ack.

Posts (router/posts.py) decides whether a post fans out and hands it here with the followers the
author's node returned; this module does the rest and never calls back. A once-hot author also has
follower edges on its salted keys: those are paged from the salts (router/salted_reads.py).

Followers are grouped by the node that owns their inbox and each node gets one batched RPC (chunked
at ``max_batch`` consumers), all nodes concurrently; never one RPC per follower. A failed batch is
retried with exponential backoff and logged; one that still fails after ``max_attempts`` is logged
as an error with the post id and the consumers it did not reach, never dropped silently. Inbox
writes are idempotent (keyed by post id), so retries and overlaps cannot show a post twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from common.errors import FeedringError, WrongEpoch
from common.hot_state import HotState
from common.storage_client import StorageClient
from protos import feed_pb2, storage_pb2
from router.salted_reads import SaltedReads

__all__ = ["FanOut"]

log = logging.getLogger(__name__)

# Sends one batch of consumers to one node; returns the inbox entries it wrote.
SendBatch = Callable[[str, list[str]], Awaitable[int]]


class FanOut:
    def __init__(
        self,
        storage: StorageClient,
        reads: SaltedReads,
        max_batch: int = 2000,
        max_attempts: int = 8,
        max_backlog: int = 200_000,
    ) -> None:
        self.storage = storage
        self.reads = reads
        self.max_batch = max_batch
        self.max_attempts = max_attempts
        self.max_backlog = max_backlog
        self.inbox_writes = 0  # inbox entries written, for status and benchmarks
        self.failed_batches = 0  # batches given up on after every retry
        self._pending: set[asyncio.Task[None]] = set()
        self._backlog = 0  # inbox entries queued and not yet written
        self._room = asyncio.Event()
        self._room.set()

    @property
    def backlog(self) -> int:
        return self._backlog

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def deliver(self, post: feed_pb2.Post, state: HotState, followers: Sequence[str]) -> None:
        """Starts copying `post` into its author's followers' inboxes: `followers` (read with the
        post), then, for a salted author, those on its salted keys. Returns once there is room."""

        async def send(node_id: str, consumers: list[str]) -> int:
            request = storage_pb2.InsertInboxRequest(posts=[post], consumers=consumers)
            return (await self.storage.insert_inbox.on_node(node_id, request)).inserted

        self._start(f"deliver post={post.id}", post.author, state, followers, send)
        await self._admit()

    async def retract(self, author: str, post_id: int, state: HotState, followers: Sequence[str]) -> None:
        """Starts removing a deleted post from the followers' inboxes (and a salted author's others)."""

        async def send(node_id: str, consumers: list[str]) -> int:
            request = storage_pb2.RemoveFromInboxesRequest(post_id=post_id, consumers=consumers)
            await self.storage.remove_from_inboxes.on_node(node_id, request)
            return 0

        self._start(f"retract post={post_id}", author, state, followers, send)
        await self._admit()

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Waits for deliveries in flight (at shutdown, and in tests)."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout_s)

    # -- the work --------------------------------------------------------------------------------

    async def _admit(self) -> None:
        """Backpressure: waits while more than `max_backlog` inbox writes are queued, so a burst of
        posts by well-followed authors slows their acknowledgements instead of growing the
        router's memory without bound."""
        while self._backlog > self.max_backlog:
            self._room.clear()
            await self._room.wait()

    def _start(self, what: str, author: str, state: HotState, followers: Sequence[str], send: SendBatch) -> None:
        self._backlog += len(followers)  # counted now, so the _admit() that follows sees them
        task = asyncio.create_task(self._run(what, author, state, list(followers), send))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _run(self, what: str, author: str, state: HotState, followers: list[str], send: SendBatch) -> None:
        await self._send_all(what, followers, send, counted=True)
        if not state.salted:
            return
        done = set(followers)  # an edge made before salting is on the home key: already sent
        try:
            async for page in self.reads.follower_pages(author, state, salted_only=True):
                await self._send_all(what, [f for f in page if f not in done], send)
        except FeedringError as exc:
            log.error("fan-out could not list salted followers %s error=%s", what, exc.message)

    async def _send_all(self, what: str, consumers: list[str], send: SendBatch, counted: bool = False) -> None:
        count = len(consumers)
        if not counted:
            self._backlog += count
        try:
            batches = [
                (node_id, group[i : i + self.max_batch])
                for node_id, group in self.storage.group_by_node(consumers).items()
                for i in range(0, len(group), self.max_batch)
            ]
            await asyncio.gather(*(self._send_batch(what, node_id, group, send) for node_id, group in batches))
        finally:
            self._backlog -= count
            if self._backlog <= self.max_backlog:
                self._room.set()

    async def _send_batch(self, what: str, node_id: str, consumers: list[str], send: SendBatch) -> None:
        delay = 0.05
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.inbox_writes += await send(node_id, consumers)
                return
            except WrongEpoch as exc:
                # The map moved under us: regroup these consumers by their new owners.
                await self.storage.refresh_map(at_least=exc.epoch)
                regrouped = self.storage.group_by_node(consumers)
                if list(regrouped) != [node_id]:
                    await asyncio.gather(*(self._send_batch(what, n, g, send) for n, g in regrouped.items()))
                    return
                err: FeedringError = exc
            except FeedringError as exc:
                err = exc
            if attempt < self.max_attempts:
                log.warning(
                    "fan-out batch failed, retrying %s node=%s consumers=%d attempt=%d error=%s",
                    what,
                    node_id,
                    len(consumers),
                    attempt,
                    err.message,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        self.failed_batches += 1
        log.error(
            "fan-out batch given up %s node=%s consumers=%d attempts=%d error=%s missed=%s",
            what,
            node_id,
            len(consumers),
            self.max_attempts,
            err.message,
            ",".join(consumers[:50]),
        )
