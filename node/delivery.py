"""Node-side delivery: a node copies its authors' posts into every follower's inbox itself, durably.

Every post (and every delete) stored on this node came with a delivery record, written in the same
atomic batch (node/delivery_log.py) on every replica of the author's partition. The first live
replica of the partition drives its records, a few at a time: for each it pages the author's
followers — from its own copy and from another replica's, so a follow acknowledged by a majority is
never missed — and writes each page into the followers' inboxes on all their replicas at once
(node/replication.py: one batch per node, a quorum per partition, hints for a replica that missed
it), a few pages at once (node/pages_in_flight.py). It checkpoints the last follower of each page
that landed with every page before it; after the last page it removes the record, here and on the
other replicas. If the driving replica stays down, the next replica in the
partition's list takes its records over, and a record the driving replica lacks is driven by a
replica that has it (node/delivery_takeover.py).

A failed page is retried with backoff (a map that moved sends the consumers to their new owners); a
record that still cannot finish is left for the next pass, never dropped; a restarted node resumes
every record from its checkpoint; a record whose partition moved away is resumed by its new owner,
which received it with the partition. Inbox writes are idempotent (keyed by post id, with tombstones
against late copies), so work done twice shows nothing twice.

Bounded: records wait on disk, and the driver holds at most `concurrency` records in memory, each
with at most `pages_in_flight` pages of followers being written and one more being read. Reads keep
their turn: delivery is ordinary asyncio work between requests, and receiving nodes apply big
batches in slices (node/local_writes.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable

from common import salting
from common.errors import FeedringError, ReplicaBehind, WrongEpoch
from common.hot_state import HotState
from common.storage_client import StorageClient
from node import keys, writes
from node.delivery_log import COUNT, INSERT, Delivery, RecordsWritten
from node.delivery_stats import DeliveryMetrics
from node.delivery_takeover import Takeover
from node.feed_store import FeedStore
from node.finish_notes import FinishNotes
from node.ownership import Ownership
from node.pages_in_flight import PagesInFlight
from node.replication import Replicator
from node.store import DiskWriteError
from protos import storage_pb2

__all__ = ["DeliveryDriver", "OLDEST_LOOK_EVERY_S"]

log = logging.getLogger(__name__)

OLDEST_LOOK_EVERY_S = 10.0  # how stale the oldest record's age may be (status, metrics)
OLDEST_KEPT = 32  # records a look for the oldest keeps: the next answers when the first is done


class DeliveryDriver:
    def __init__(
        self,
        node_id: str,
        data: FeedStore,
        peers: StorageClient,
        ownership: Ownership,
        replicator: Replicator,
        records_written: RecordsWritten,
        salt_buckets: int,
        page: int = 500,
        concurrency: int = 4,
        pages_in_flight: int = 4,
        max_attempts: int = 6,
        catching_up: Callable[[], bool] = lambda: False,
    ) -> None:
        self.node_id = node_id
        self.data = data
        self.log = data.deliveries
        self.peers = peers
        self.ownership = ownership
        self.replicator = replicator
        self.records_written = records_written
        self.salt_buckets = salt_buckets
        self.page = page
        self.concurrency = concurrency
        self.pages_in_flight = pages_in_flight  # per record (node/pages_in_flight.py)
        self.max_attempts = max_attempts
        self.metrics = DeliveryMetrics()
        self.takeover = Takeover(node_id, peers, ownership, data.deliveries, records_written, catching_up)
        self.finish_notes = FinishNotes(replicator)  # the other replicas are told a moment later, together
        # Partitions that may hold records, so a pass looks only there: scanning every owned
        # partition's D range costs a LevelDB seek each, and deleted records leave deletion markers
        # that seeks must skip (measured: ~200 ms a pass on a node of 5M keys). None: not known yet.
        self._partitions: set[int] | None = None
        self._owned_seen: frozenset[int] = frozenset()  # partitions gained since arrive with records
        self._acting_seen: frozenset[int] = frozenset()  # partitions whose records this node drove last look
        # Finished, but the disk refused to remove the record: key -> the version it was finished up to.
        self._done_unrecorded: dict[bytes, int] = {}
        self._in_flight: dict[bytes, asyncio.Task[bool]] = {}  # record key -> its delivery
        self._retry_at: dict[bytes, tuple[float, int]] = {}  # record key -> (when, failures so far)
        self._task: asyncio.Task[None] | None = None
        self._next_partition = 0  # where the next look for records starts (round the partitions)
        # The OLDEST_KEPT oldest records (creation ms, key), oldest first, found by a scan at
        # `_oldest_looked` (monotonic); those found finished since are dropped from the front.
        self._oldest: list[tuple[int, bytes]] = []
        self._oldest_looked = -OLDEST_LOOK_EVERY_S
        self._oldest_look_cost_s = 0.0
        self._oldest_look: asyncio.Task[None] | None = None  # a look in flight (a scan in slices)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._in_flight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.takeover.stop()
        await self.finish_notes.close()
        if self._oldest_look is not None:
            self._oldest_look.cancel()
        await self.oldest_looked()

    def stats(self, percentiles: bool = True) -> storage_pb2.DeliveryStats:
        return self.metrics.stats(self.log.count(), self.oldest_age_s(), percentiles)

    def oldest_age_s(self) -> float:
        """Age of the oldest record this node drives, as of the last look, which runs at most every
        OLDEST_LOOK_EVERY_S (and at most 1% of the time). A look parses every record; status and the
        metrics snapshot ask each second, so a backlog made every look dearer (6% of a node's CPU,
        measured with 1,500 records owed), and on the event loop one held reads back for tens of
        milliseconds on a loaded node (deletion markers of finished records slow each seek; among its
        longest stalls, measured): it runs apart, in slices (node/delivery_log.py), and this answers
        from the last one. A look keeps the OLDEST_KEPT oldest records; between looks the age grows
        with the clock, from the oldest of them still owed (a point read each). Once all are done, or
        when the last look found none while records are owed now, a look starts at once (within the
        1%); until it lands, the last one's age stands, an upper bound (every record owed is younger).
        Before, a look kept one record: on a loaded node a look takes tens of ms, so the 1% held the
        next one back for seconds, and a finished record's age stood all that while (the bench's
        stress steps ended on one at 6.7 s, and on 5.2 s, while the lag p99 was 0.8 and 0.6 s)."""
        if not self.log.count():
            self._oldest = []
            return 0.0
        oldest, all_done = self._oldest, not self._oldest
        while oldest and not self.log.held([oldest[0][1]])[0]:  # one point read per record looked at
            if len(oldest) == 1:
                all_done = True  # its age stands, an upper bound, until the next look lands
                break
            oldest.pop(0)  # finished since the look: the next oldest found answers
        since = time.monotonic() - self._oldest_looked
        least = 100 * self._oldest_look_cost_s
        idle = self._oldest_look is None or self._oldest_look.done()
        if idle and (since >= max(OLDEST_LOOK_EVERY_S, least) or (since >= least and all_done)):
            self._oldest_look = asyncio.ensure_future(self._look_for_oldest())
        if not oldest:
            return 0.0
        return max(time.time() * 1000 - oldest[0][0], 0.0) / 1000

    async def _look_for_oldest(self) -> None:
        partitions = self._partitions if self._partitions is not None else self.takeover.acting()
        started = time.monotonic()
        self._oldest = await self.log.oldest(frozenset(partitions), OLDEST_KEPT)
        self._oldest_looked = time.monotonic()
        self._oldest_look_cost_s = self._oldest_looked - started

    async def oldest_age_settled(self) -> float:
        """oldest_age_s, except that an ask that starts a look waits for it: what status reports
        (the metrics snapshot, every second, answers from the last look without waiting)."""
        self.oldest_age_s()
        await self.oldest_looked()
        return self.oldest_age_s()

    async def oldest_looked(self) -> None:
        """Waits for the look in flight, if one is."""
        if self._oldest_look is not None:
            await asyncio.gather(self._oldest_look, return_exceptions=True)

    # -- the loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        """Keeps up to `concurrency` records in delivery at once, starting the next as soon as a slot
        frees (never waiting for a whole group: one big delivery must not hold up a small one). A
        record that could not finish waits with backoff before it is tried again."""
        wake = self.records_written.event
        while True:
            wake.clear()
            owned = self.ownership.owned
            if owned - self._owned_seen:
                self._partitions = None  # gained partitions arrive with the records they owe: look everywhere
            self._owned_seen = owned
            acting = self.takeover.acting()
            if self._partitions is not None and acting - self._acting_seen:
                # A map change (a move's commit, a takeover) made this node drive partitions whose
                # records it already holds (copied during the move, or written while standing by):
                # look there now, not at the next check of old records.
                self._partitions |= acting - self._acting_seen
            self._acting_seen = acting
            try:
                self._start_more()
            except Exception:  # the loop must survive anything; the records stay for the next look
                log.exception("delivery loop failed node=%s", self.node_id)
                await asyncio.sleep(1.0)
                continue
            if self._partitions is None:  # at start, and after gaining partitions: a full scan
                found = await asyncio.to_thread(self.log.partitions_with_records, self.takeover.acting())
                self._partitions = found | self.records_written.take()
                continue
            next_retry = min((t for t, _ in self._retry_at.values()), default=time.monotonic() + 1.0)
            # Not asyncio.wait_for: on 3.11 it can swallow a cancellation that races the wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(max(next_retry - time.monotonic(), 0.01), 1.0)):
                    await wake.wait()

    def _start_more(self) -> None:
        """Starts records (oldest key first) into the free slots; synchronous, so no write falls
        between reading the records and narrowing the set of partitions that may hold them."""
        if self._partitions is None:
            return
        self._partitions |= self.records_written.take()
        free = self.concurrency - len(self._in_flight)
        if free <= 0:
            return
        now = time.monotonic()
        limit = self.concurrency + len(self._retry_at)
        scanned = self._partitions & self.takeover.acting()
        # Round the partitions, from the one after the last record started: in plain key order a
        # backlog's records in low partitions kept jumping ahead of older ones in high partitions.
        records = self.log.pending(scanned, limit, from_partition=self._next_partition)
        if len(records) < limit:
            # Every record of these partitions is in hand, so only theirs remain (a record written
            # from now on adds its partition back through RecordsWritten), and only theirs can be retried.
            self._partitions = (self._partitions - scanned) | {keys.partition_of_key(k) for k, _ in records}
            present = {k for k, _ in records}
            self._retry_at = {k: v for k, v in self._retry_at.items() if k in present}
        self.takeover.look_for_orphans()
        records += self.takeover.adopted()
        for key, record in records:
            if free <= 0:
                break
            if key in self._in_flight or self._retry_at.get(key, (0.0, 0))[0] > now or key in self._done_unrecorded:
                continue
            task = asyncio.create_task(self._deliver(key, record))
            self._in_flight[key] = task
            self._next_partition = keys.partition_of_key(key) + 1
            free -= 1
            task.add_done_callback(functools.partial(self._finished, key))

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
        self.records_written.event.set()  # a slot is free

    # -- one record ------------------------------------------------------------------------------

    async def _deliver(self, key: bytes, record: storage_pb2.Delivery) -> bool:
        """Carries one record out; True when it is finished (or no longer this node's). A record is
        an insert or a retract of a post for every follower, or a salted key's count report."""
        part = keys.partition_of_key(key)
        what = f"{Delivery.Kind.Name(record.kind).lower()} post={record.post_id} author={record.author}"
        try:
            if record.kind == COUNT:
                await self._report_count(key, record)
                return True
            if record.unless_hot and await self._author_state(record.author) is HotState.HOT:
                self._finish(key, record)  # still hot: followers merge the post at read time
                return True
            # Pipelined: the next page of followers is read while pages before it are written.
            next_page = asyncio.ensure_future(self._followers(record, record.after, self.page))
            pages = PagesInFlight(self.pages_in_flight)
            try:
                # A small author's followers, all on this node's copy, are written while another
                # replica's list is read (the time a post takes to show: measured 3.5 of ~7 ms at
                # idle); that list then only adds a follow this copy missed.
                early = set(await self._early_followers(record))
                while part in self.ownership.owned:
                    page = await next_page
                    last_page = len(page) < self.page
                    if not last_page:
                        next_page = asyncio.ensure_future(self._followers(record, page[-1], self.page))
                    rest = [c for c in page if c not in early] if early else page
                    early = set()
                    if rest:
                        pages.start(self._send(record, rest), page[-1])
                    while pages and (pages.full() or last_page):
                        record.after = await pages.oldest_landed()
                        if pages or not last_page:  # the last page of all is recorded by _finish
                            with contextlib.suppress(DiskWriteError):  # a full disk: the progress is in memory
                                self.log.checkpoint(key, record)
                    if last_page:
                        if part in self.ownership.owned:
                            self._finish(key, record)
                            self.metrics.finished(record)
                        return True
                return True  # moved away with its partition: the new owner resumes it
            except asyncio.CancelledError:
                pages.cancel()
                raise
            finally:
                await pages.close()
                if not next_page.done():
                    next_page.cancel()
                elif not next_page.cancelled():
                    next_page.exception()  # read by nobody: a page read ahead of a failure
        except FeedringError as exc:
            log.warning("delivery postponed %s after=%r error=%s", what, record.after, exc.message)
            return False

    def disk_writable_again(self) -> None:
        """The store takes writes again (node/server.py reopened it): remove the records finished
        while it refused, and record the progress kept in memory from now on."""
        for key, up_to_version in list(self._done_unrecorded.items()):
            self.log.finish(key, up_to_version or None)
            del self._done_unrecorded[key]
        self.records_written.note(())  # look again: hints replayed meanwhile may have brought records

    async def _report_count(self, key: bytes, record: storage_pb2.Delivery) -> None:
        """Tells the author's home the salted key's follower count as it is now (newest version wins)."""
        counters = self.data.counters(record.key)
        report = storage_pb2.FollowerCountReport(
            user=record.author,
            key=record.key,
            count=counters.follower_count if counters else 0,
            version=counters.edge_version if counters else record.version,
        )
        await self.peers.report_follower_count.by_key(record.author, report)
        self._finish(key, record, up_to_version=report.version)  # unless a newer change rewrote it

    def _finish(self, key: bytes, record: storage_pb2.Delivery, up_to_version: int = 0) -> None:
        """Removes the record here, and within a moment on the partition's other replicas (which
        would otherwise take it over one day; node/finish_notes.py); a replica that misses the word
        gets it as a hint. A disk that refuses the removal here leaves the record for after a
        restart (delivered again: idempotent), and until then this process remembers not to start
        it again."""
        try:
            self.log.finish(key, up_to_version or None)
        except DiskWriteError:
            self._done_unrecorded[key] = up_to_version
        author_key, post_id, kind = keys.delivery_parts(key)
        self.finish_notes.add(
            storage_pb2.FinishedDelivery(author_key=author_key, post_id=post_id, kind=kind, up_to_version=up_to_version)
        )

    async def _author_state(self, author: str) -> HotState:
        meta = await self.peers.get_user_meta.by_key(author, storage_pb2.GetUserMetaRequest(user_key=author))
        return HotState(meta.state) if meta.found else HotState.NORMAL

    async def _early_followers(self, record: storage_pb2.Delivery) -> list[str]:
        """Writes the first page from this node's own copy of the edges when it is the author's
        whole list there (shorter than a page, a home key only); returns the followers written."""
        if record.after or record.salted or self.peers.map.partition(record.author) not in self.ownership.owned:
            return []
        followers = self.data.graph.list_edges(keys.FOLLOWERS, record.author, "", self.page)
        if not followers or len(followers) >= self.page:
            return []
        await self._send(record, followers)
        return followers

    async def _followers(self, record: storage_pb2.Delivery, after: str, limit: int) -> list[str]:
        """The next `limit` followers after `after`, in byte order, over every key of the author.
        Read from two replicas of each key (this node's own copy, where it has one, and another):
        a follow is acknowledged once a majority of replicas has its edge, so any two of three
        include one that has it, and a replica that missed a follow cannot drop its follower."""
        author_keys = [record.author]
        if record.salted:
            author_keys += salting.salted_keys(record.author, self.salt_buckets)
        mine = self.ownership.owned
        local = [k for k in author_keys if self.peers.map.partition(k) in mine]
        pages = list(
            await asyncio.gather(*(self._remote_edges(k, after, limit, skip_self=k in local) for k in author_keys))
        )
        if local:
            pages.append(self.data.graph.list_edges(keys.FOLLOWERS, local[0], after, limit, local[1:]))
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
        behind: list[tuple[str, ReplicaBehind]] = []  # replicas catching up refused: the last resort
        for node_id in others:
            try:
                reply = await self.peers.list_edges.on_node(node_id, request, timeout_s=self.peers.attempt_timeout_s)
                return list(reply.users)
            except ReplicaBehind as exc:
                behind.append((node_id, exc))
            except FeedringError as exc:
                if not skip_self and node_id == others[-1] and not behind:
                    raise
                log.debug("follower page from another replica failed node=%s error=%s", node_id, exc.message)
        last_resort = ReplicaBehind.least_behind_first(behind)
        for node_id in last_resort:
            try:
                reply = await self.peers.list_edges.on_node(
                    node_id, request, timeout_s=self.peers.attempt_timeout_s, last_resort=True
                )
                return list(reply.users)
            except FeedringError:
                if not skip_self and node_id == last_resort[-1]:
                    raise
        return []

    async def _send(self, record: storage_pb2.Delivery, consumers: list[str]) -> None:
        delay = 0.05
        for attempt in range(1, self.max_attempts + 1):
            try:
                if record.kind == INSERT:
                    await self.replicator.write(
                        writes.INSERT_INBOX, storage_pb2.InsertInboxRequest(posts=[record.post], consumers=consumers)
                    )
                else:
                    await self.replicator.write(
                        writes.REMOVE_FROM_INBOXES,
                        storage_pb2.RemoveFromInboxesRequest(post_id=record.post_id, consumers=consumers),
                    )
                self.metrics.wrote(len(consumers))  # on a quorum of each consumer's replicas
                return
            except WrongEpoch as exc:
                await self.peers.refresh_map(at_least=exc.epoch)  # the next try goes by the new map
                if attempt == self.max_attempts:
                    raise
            except FeedringError:
                if attempt == self.max_attempts:
                    raise
            self.metrics.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
