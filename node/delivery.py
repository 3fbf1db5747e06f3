"""Node-side delivery: a node copies its authors' posts into every follower's inbox itself, durably.

Every post (and every delete) stored on this node came with a delivery record, written in the same
atomic batch (node/delivery_log.py) on every replica of the author's partition. The first live
replica of the partition drives its records, a few at a time: for each it pages the author's
followers — from its own copy and from another replica's, so a follow acknowledged by a majority is
never missed — and writes each page into the followers' inboxes on all their replicas at once
(node/replication.py: one batch per node, a quorum per partition, hints for a replica that missed
it). After each page it checkpoints the last follower done; after the last page it removes the
record, here and on the other replicas. If the driving replica stays down, the next replica in the
partition's list takes its records over (TAKEOVER_AFTER_S); a record older than ORPHAN_AFTER_S that
the driving replica does not hold is driven by a replica that does.

A failed page is retried with backoff (a map that moved sends the consumers to their new owners); a
record that still cannot finish is left for the next pass, never dropped; a restarted node resumes
every record from its checkpoint; a record whose partition moved away is resumed by its new owner,
which received it with the partition. Inbox writes are idempotent (keyed by post id, with tombstones
against late copies), so work done twice shows nothing twice.

Bounded: records wait on disk, and the driver holds at most `concurrency` records and one page of
followers for each in memory. Reads keep their turn: delivery is ordinary asyncio work between
requests, and receiving nodes apply big batches in slices (node/service.py).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable

from common import salting
from common.errors import FeedringError, WrongEpoch
from common.hot_state import HotState
from common.storage_client import StorageClient
from node import keys
from node.change_feed import partition_of_key
from node.delivery_log import COUNT, INSERT, Delivery, DeliveryLog
from node.feed_store import FeedStore
from node.replication import Replicator
from node.write_methods import WRITE
from protos import storage_pb2

__all__ = ["DeliveryDriver"]

log = logging.getLogger(__name__)

_RATE_WINDOW_S = 10.0
_LAG_WINDOW_S = 30.0  # delivery lag is reported over the records finished this recently
_LAG_MAX_SAMPLES = 100_000
# Bucket bounds of the cumulative lag histogram (ms; the last is +Inf).
LAG_BUCKETS_MS = (
    *(10, 25, 50, 100, 250, 500, 750, 1_000, 1_500, 2_000, 3_000, 4_000, 5_000, 7_500),
    *(10_000, 15_000, 20_000, 30_000, 60_000, 120_000, float("inf")),
)
# A replica takes over its partition's deliveries when every replica before it in the partition's
# list has failed every call and health check for this long ...
TAKEOVER_AFTER_S = 2.0
# ... and drives a record this old that the driving replica does not hold (it finished it and the
# word did not arrive, or it never had it: the write reached a quorum without it), asking every
# ORPHAN_CHECK_EVERY_S.
ORPHAN_AFTER_S = 10.0
ORPHAN_CHECK_EVERY_S = 5.0
_INSERT_INBOX = WRITE["InsertInbox"]
_REMOVE_FROM_INBOXES = WRITE["RemoveFromInboxes"]
_FINISH = WRITE["FinishDeliveries"]


class DeliveryDriver:
    def __init__(
        self,
        node_id: str,
        feed_store: FeedStore,
        peers: StorageClient,
        owned: Callable[[], frozenset[int]],
        salt_buckets: int,
        replicator: Replicator,
        page: int = 500,
        concurrency: int = 4,
        max_attempts: int = 6,
    ) -> None:
        self.node_id = node_id
        self.feed_store = feed_store
        self.log = DeliveryLog(feed_store)
        self.peers = peers
        self.replicator = replicator
        self._owned = owned
        self.salt_buckets = salt_buckets
        self.page = page
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.inbox_writes = 0  # entries inserted or removed by deliveries since start
        self.retries = 0  # batches retried
        self._samples: deque[tuple[float, int]] = deque()
        self._lags: deque[tuple[float, float]] = deque()  # (finished at, ms from the post to all inboxes)
        self._lag_buckets = [0] * len(LAG_BUCKETS_MS)
        self._wake = asyncio.Event()
        # Partitions that may hold records, so a pass looks only there: scanning every owned
        # partition's D range costs a LevelDB seek each, and deleted records leave deletion markers
        # that seeks must skip (measured: ~200 ms a pass on a node of 5M keys). None: not known yet.
        self._partitions: set[int] | None = None
        self._woken: set[int] = set()  # partitions written since the loop last looked
        self._in_flight: dict[bytes, asyncio.Task[bool]] = {}  # record key -> its delivery
        self._retry_at: dict[bytes, tuple[float, int]] = {}  # record key -> (when, failures so far)
        self._task: asyncio.Task[None] | None = None
        self._acting: tuple[tuple[int, tuple[str, ...]], frozenset[int]] | None = None
        self._orphans_checked = 0.0
        self._orphan_check: asyncio.Task[None] | None = None
        self._adopted: set[bytes] = set()  # keys of old records of standby partitions to drive here

    # -- which records this node drives ----------------------------------------------------------

    def owned(self) -> frozenset[int]:
        """Partitions whose records this node drives now: those it holds where every replica before
        it in the partition's list has been down for TAKEOVER_AFTER_S (normally: where it is first)."""
        cluster_map = self.peers.map
        down = self._down()
        cache_key = (cluster_map.epoch, down)
        if self._acting is None or self._acting[0] != cache_key:
            mine = self._owned()
            acting = frozenset(
                p
                for p in mine
                if next((n for n in cluster_map.replicas(p) if n not in down), self.node_id) == self.node_id
            )
            if self._acting is not None and acting - self._acting[1]:
                log.info(
                    "delivery takes over partitions node=%s partitions=%d down=%s",
                    self.node_id,
                    len(acting - self._acting[1]),
                    ",".join(down) or "-",
                )
            self._acting = (cache_key, acting)
        return self._acting[1]

    def _down(self) -> tuple[str, ...]:
        """Other members that have failed every call and health check for TAKEOVER_AFTER_S."""
        return tuple(
            m.id
            for m in self.peers.map.members
            if m.id != self.node_id and self.peers.health.down_for_s(m.address) >= TAKEOVER_AFTER_S
        )

    def _driver(self, partition: int) -> str | None:
        """The replica driving `partition`'s records now: the first in its list not down."""
        down = self._down()
        return next((n for n in self.peers.map.replicas(partition) if n not in down), None)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._in_flight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self, partitions: set[int]) -> None:
        """Records were just written in `partitions`: look at once instead of at the next idle poll."""
        self._woken |= partitions
        self._wake.set()

    def rescan(self) -> None:
        """Records may have arrived without a write here (partitions gained by a move): look everywhere."""
        self._partitions = None
        self._wake.set()

    def stats(self, percentiles: bool = True) -> storage_pb2.DeliveryStats:
        """`percentiles` False skips sorting up to _LAG_MAX_SAMPLES lags (milliseconds of the event
        loop): the metrics snapshot, taken every second, exports the lag histogram instead."""
        self._sample()
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        self._expire_lags(time.monotonic())
        lags = sorted(lag for _, lag in self._lags) if percentiles else []
        return storage_pb2.DeliveryStats(
            lag_p50_ms=_percentile(lags, 0.50),
            lag_p99_ms=_percentile(lags, 0.99),
            lag_samples=len(self._lags),
            lag_bucket_le_ms=LAG_BUCKETS_MS,
            lag_bucket_counts=self._lag_buckets,
            records=self.log.count(),
            oldest_age_s=self.log.oldest_age_s(self._partitions or ()),
            inbox_writes=self.inbox_writes,
            inbox_writes_per_s=(n1 - n0) / (t1 - t0) if t1 > t0 else 0.0,
            retries=self.retries,
        )

    def _record_lag(self, record: storage_pb2.Delivery) -> None:
        if record.kind == INSERT and record.created_at_ms:
            now = time.monotonic()
            lag_ms = max(time.time() * 1000 - record.created_at_ms, 0.0)
            self._lags.append((now, lag_ms))
            self._lag_buckets[bisect.bisect_left(LAG_BUCKETS_MS, lag_ms)] += 1
            self._expire_lags(now)

    def _expire_lags(self, now: float) -> None:
        while self._lags and (now - self._lags[0][0] > _LAG_WINDOW_S or len(self._lags) > _LAG_MAX_SAMPLES):
            self._lags.popleft()

    def _sample(self) -> None:
        now = time.monotonic()
        if not self._samples or now - self._samples[-1][0] >= 0.5:
            self._samples.append((now, self.inbox_writes))
        while len(self._samples) > 2 and now - self._samples[0][0] > _RATE_WINDOW_S:
            self._samples.popleft()

    # -- the loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        """Keeps up to `concurrency` records in delivery at once, starting the next as soon as a slot
        frees (never waiting for a whole group: one big delivery must not hold up a small one). A
        record that could not finish waits with backoff before it is tried again."""
        while True:
            self._wake.clear()
            try:
                self._start_more()
            except Exception:  # the loop must survive anything; the records stay for the next look
                log.exception("delivery loop failed node=%s", self.node_id)
                await asyncio.sleep(1.0)
                continue
            if self._partitions is None:  # at start, and after gaining partitions: a full scan
                found = await asyncio.to_thread(self.log.partitions_with_records, self.owned())
                self._partitions = found | self._woken
                continue
            next_retry = min((t for t, _ in self._retry_at.values()), default=time.monotonic() + 1.0)
            # Not asyncio.wait_for: on 3.11 it can swallow a cancellation that races the wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(max(next_retry - time.monotonic(), 0.01), 1.0)):
                    await self._wake.wait()

    def _start_more(self) -> None:
        """Starts records (oldest key first) into the free slots; synchronous, so no write falls
        between reading the records and narrowing the set of partitions that may hold them."""
        if self._partitions is None:
            return
        self._partitions |= self._woken
        self._woken = set()
        free = self.concurrency - len(self._in_flight)
        if free <= 0:
            return
        now = time.monotonic()
        limit = self.concurrency + len(self._retry_at)
        scanned = self._partitions & self.owned()
        records = self.log.pending(scanned, limit)
        if len(records) < limit:
            # Every record of these partitions is in hand, so only theirs remain (a record written
            # from now on adds its partition back through wake()), and only theirs can be retried.
            self._partitions = (self._partitions - scanned) | {partition_of_key(k) for k, _ in records}
            present = {k for k, _ in records}
            self._retry_at = {k: v for k, v in self._retry_at.items() if k in present}
        if now - self._orphans_checked >= ORPHAN_CHECK_EVERY_S:
            self._look_for_orphans()
        records += self._adopted_records()
        for key, record in records:
            if free <= 0:
                break
            if key in self._in_flight or self._retry_at.get(key, (0.0, 0))[0] > now:
                continue
            task = asyncio.create_task(self._deliver(key, record))
            self._in_flight[key] = task
            free -= 1
            task.add_done_callback(functools.partial(self._finished, key))

    def _look_for_orphans(self) -> None:
        """Records of partitions another replica drives that are older than ORPHAN_AFTER_S are
        checked with that replica (in the background) before this node drives them."""
        self._orphans_checked = time.monotonic()
        standby = self._owned() - self.owned()
        cutoff_ms = time.time() * 1000 - ORPHAN_AFTER_S * 1000
        old = [(k, r) for k, r in self.log.pending(standby, 10_000) if r.created_at_ms and r.created_at_ms < cutoff_ms]
        if old and (self._orphan_check is None or self._orphan_check.done()):
            self._orphan_check = asyncio.create_task(self._check_orphans(old[:1000]))

    def _adopted_records(self) -> list[tuple[bytes, storage_pb2.Delivery]]:
        """The adopted records still on disk (a record finished or replaced meanwhile is forgotten)."""
        out = []
        for key in list(self._adopted):
            raw = self.feed_store.store.get(key)
            if raw is None:
                self._adopted.discard(key)
            else:
                out.append((key, Delivery.FromString(raw)))
        return out

    async def _check_orphans(self, records: list[tuple[bytes, storage_pb2.Delivery]]) -> None:
        """Asks each partition's driving replica which of these old records it holds: those it does
        not (finished there and the word did not arrive here, or never written there) this node
        drives itself; deliveries are idempotent, so a record finished twice does no harm."""
        by_driver: dict[str, list[tuple[bytes, storage_pb2.Delivery]]] = {}
        for key, record in records:
            # The driving replica comes before this one in the partition's list; not simply the
            # first, which may be the dead primary that a replica lacking the record took over from.
            driver = self._driver(partition_of_key(key))
            if driver is not None and driver != self.node_id:
                by_driver.setdefault(driver, []).append((key, record))
        for driver, group in by_driver.items():
            try:
                reply = await self.peers.held_deliveries.on_node(
                    driver, storage_pb2.HeldDeliveriesRequest(keys=[k for k, _ in group]), timeout_s=2.0
                )
            except FeedringError:
                continue  # unreachable: if it stays down, this node takes its partitions over
            orphans = [(k, r) for (k, r), held in zip(group, reply.held, strict=False) if not held]
            if orphans:
                log.info(
                    "delivery adopts records its driving replica lacks node=%s count=%d", self.node_id, len(orphans)
                )
                self._adopted.update(k for k, _ in orphans)
                self._wake.set()

    def _finished(self, key: bytes, task: asyncio.Task[bool]) -> None:
        self._in_flight.pop(key, None)
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("delivery failed node=%s", self.node_id, exc_info=task.exception())
        if task.exception() is not None or not task.result():
            failures = self._retry_at.get(key, (0.0, 0))[1] + 1
            self._retry_at[key] = (time.monotonic() + min(0.1 * 2**failures, 5.0), failures)
        else:
            self._retry_at.pop(key, None)
        self._wake.set()  # a slot is free

    async def _deliver(self, key: bytes, record: storage_pb2.Delivery) -> bool:
        """Carries one record out; True when it is finished (or no longer this node's). A record is
        an insert or a retract of a post for every follower, or a salted key's count report."""
        part = partition_of_key(key)
        what = f"{Delivery.Kind.Name(record.kind).lower()} post={record.post_id} author={record.author}"
        try:
            if record.kind == COUNT:
                await self._report_count(key, record)
                return True
            if record.unless_hot and await self._author_state(record.author) is HotState.HOT:
                await self._finish(key, record)  # still hot: followers merge the post at read time
                return True
            while part in self._owned():
                page = await self._followers(record, self.page)
                if page:
                    await self._send(record, page)
                if len(page) < self.page:
                    if part in self._owned():
                        await self._finish(key, record)
                        self._record_lag(record)
                    return True
                record.after = page[-1]
                self.log.checkpoint(key, record)
            return True  # moved away with its partition: the new owner resumes it
        except FeedringError as exc:
            log.warning("delivery postponed %s after=%r error=%s", what, record.after, exc.message)
            return False

    async def _report_count(self, key: bytes, record: storage_pb2.Delivery) -> None:
        """Tells the author's home the salted key's follower count as it is now (newest version wins)."""
        counters = self.feed_store.user_counters(record.key)
        report = storage_pb2.FollowerCountReport(
            user=record.author,
            key=record.key,
            count=counters.follower_count if counters else 0,
            version=counters.edge_version if counters else record.version,
        )
        await self.peers.report_follower_count.by_key(record.author, report)
        await self._finish(key, record, up_to_version=report.version)  # unless a newer change rewrote it

    async def _finish(self, key: bytes, record: storage_pb2.Delivery, up_to_version: int = 0) -> None:
        """Removes the record here and on the partition's other replicas (which would otherwise take
        it over one day); a replica that misses the word gets it as a hint."""
        self.log.finish(key, up_to_version or None)
        author_key = key[3:].split(b"\x00", 1)[0].decode("utf-8")
        done = storage_pb2.FinishedDelivery(
            author_key=author_key, post_id=keys.post_id_of(key[:-1]), kind=key[-1], up_to_version=up_to_version
        )
        try:
            await self.replicator.write(_FINISH, storage_pb2.FinishDeliveriesRequest(finished=[done]))
        except FeedringError as exc:
            log.debug("delivery finish not acknowledged by a quorum key=%r error=%s", key, exc.message)

    async def _author_state(self, author: str) -> HotState:
        meta = await self.peers.get_user_meta.by_key(author, storage_pb2.GetUserMetaRequest(user_key=author))
        return HotState(meta.state) if meta.found else HotState.NORMAL

    async def _followers(self, record: storage_pb2.Delivery, limit: int) -> list[str]:
        """The next `limit` followers after the checkpoint, in byte order, over every key of the author.
        Read from two replicas of each key (this node's own copy, where it has one, and another):
        a follow is acknowledged once a majority of replicas has its edge, so any two of three
        include one that has it, and a replica that missed a follow cannot drop its follower."""
        author_keys = [record.author]
        if record.salted:
            author_keys += salting.salted_keys(record.author, self.salt_buckets)
        mine = self._owned()
        local = [k for k in author_keys if self.peers.map.partition(k) in mine]
        pages = [await self._remote_edges(k, record.after, limit, skip_self=k in local) for k in author_keys]
        if local:
            pages.append(self.feed_store.graph.list_edges(keys.FOLLOWERS, local[0], record.after, limit, local[1:]))
        return salting.merge_users(pages, limit)

    async def _remote_edges(self, user_key: str, after: str, limit: int, skip_self: bool) -> list[str]:
        """A page of `user_key`'s followers from a replica other than this node (none answering and
        this node holding the key: its own page alone has to do)."""
        request = storage_pb2.ListEdgesRequest(
            direction=storage_pb2.FOLLOWERS, user_key=user_key, after=after, limit=limit
        )
        others = [n for n in self.peers.replicas_for(user_key) if n != self.node_id]
        if not others and skip_self:
            return []
        for node_id in others:
            try:
                reply = await self.peers.list_edges.on_node(node_id, request, timeout_s=self.peers.attempt_timeout_s)
                return list(reply.users)
            except FeedringError as exc:
                if not skip_self and node_id == others[-1]:
                    raise
                log.debug("follower page from another replica failed node=%s error=%s", node_id, exc.message)
        return []

    async def _send(self, record: storage_pb2.Delivery, consumers: list[str]) -> None:
        if record.kind == INSERT:
            method, request = _INSERT_INBOX, storage_pb2.InsertInboxRequest(posts=[record.post], consumers=consumers)
        else:
            method = _REMOVE_FROM_INBOXES
            request = storage_pb2.RemoveFromInboxesRequest(post_id=record.post_id, consumers=consumers)
        delay = 0.05
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self.replicator.write(method, request)
                self.inbox_writes += len(consumers)  # on a quorum of each consumer's replicas
                self._sample()
                return
            except WrongEpoch as exc:
                await self.peers.refresh_map(at_least=exc.epoch)  # the next try goes by the new map
                if attempt == self.max_attempts:
                    raise
            except FeedringError:
                if attempt == self.max_attempts:
                    raise
            self.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0
