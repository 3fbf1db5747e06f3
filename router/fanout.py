"""Fan-out on write: copying a post into (or out of) every follower's inbox, after the ack.

Followers are grouped by the node that owns their inbox and each node gets one batched RPC (chunked
at ``max_batch`` consumers), all nodes concurrently; never one RPC per follower. A failed batch is
retried with exponential backoff and logged; one that still fails after ``max_attempts`` is logged
as an error with the post id and the consumers it did not reach, never dropped silently. Inbox
writes are idempotent (keyed by post id), so retries and overlaps cannot show a post twice.

Surviving a router crash mid-fan-out needs a durable record of pending deliveries on the author's
node; deliveries are kept as tasks here so that change has one place to go.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from common.errors import FeedringError, WrongEpoch
from protos import feed_pb2, storage_pb2
from router.node_pool import NodePool

__all__ = ["FanOut"]

log = logging.getLogger(__name__)


class FanOut:
    def __init__(
        self, pool: NodePool, max_batch: int = 2000, max_attempts: int = 8, max_backlog: int = 200_000
    ) -> None:
        self.pool = pool
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

    async def admit(self) -> None:
        """Backpressure: waits while more than `max_backlog` inbox writes are queued, so a burst of
        posts by well-followed authors slows their acknowledgements instead of growing the
        router's memory without bound."""
        while self._backlog > self.max_backlog:
            self._room.clear()
            await self._room.wait()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def deliver(self, post: feed_pb2.Post, followers: Sequence[str]) -> None:
        """Starts copying `post` into the followers' inboxes and returns at once."""
        if followers:
            self._spawn(
                f"deliver post={post.id}",
                followers,
                "InsertInbox",
                lambda consumers: storage_pb2.InsertInboxRequest(posts=[post], consumers=consumers),
            )

    def retract(self, post_id: int, followers: Sequence[str]) -> None:
        """Starts removing a deleted post from the followers' inboxes and returns at once."""
        if followers:
            self._spawn(
                f"retract post={post_id}",
                followers,
                "RemoveFromInboxes",
                lambda consumers: storage_pb2.RemoveFromInboxesRequest(post_id=post_id, consumers=consumers),
            )

    def run(self, work: Coroutine[Any, Any, None]) -> None:
        """Runs delivery work that must first find its consumers (e.g. paging salted followers)."""
        task = asyncio.create_task(self._logged(work))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except FeedringError as exc:
            log.error("fan-out could not list followers error=%s", exc.message)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Waits for deliveries in flight (at shutdown, and in tests)."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout_s)

    def _spawn(self, what: str, consumers: Sequence[str], method: str, build: Callable[[list[str]], Any]) -> None:
        count = len(consumers)
        self._backlog += count
        task = asyncio.create_task(self._send_all(what, list(consumers), method, build))
        self._pending.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self._pending.discard(t)
            self._backlog -= count
            if self._backlog <= self.max_backlog:
                self._room.set()

        task.add_done_callback(finished)

    async def _send_all(self, what: str, consumers: list[str], method: str, build: Callable[[list[str]], Any]) -> None:
        batches = []
        for node_id, group in self.pool.group_by_node(consumers).items():
            for i in range(0, len(group), self.max_batch):
                batches.append((node_id, group[i : i + self.max_batch]))
        await asyncio.gather(*(self._send_batch(what, node_id, group, method, build) for node_id, group in batches))

    async def _send_batch(
        self, what: str, node_id: str, consumers: list[str], method: str, build: Callable[[list[str]], Any]
    ) -> None:
        delay = 0.05
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = await self.pool.call_node(node_id, method, build(consumers))
                self.inbox_writes += getattr(response, "inserted", 0)
                return
            except WrongEpoch as exc:
                # The map moved under us: regroup these consumers by their new owners.
                await self.pool.refresh_map(at_least=exc.epoch)
                regrouped = self.pool.group_by_node(consumers)
                if list(regrouped) != [node_id]:
                    await asyncio.gather(*(self._send_batch(what, n, g, method, build) for n, g in regrouped.items()))
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
