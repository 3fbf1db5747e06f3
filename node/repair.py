"""Anti-entropy: replicas compare per-partition digests and copy only what differs (Dynamo, Riak AAE).

A partition's keys are split into BUCKETS buckets by user (so a user's edges, inbox and posts fall
in one bucket), and a bucket's digest is the sum of a 64-bit hash of each key and value in it. The
delivery records (D: each replica's own work list) and the counters (M: derived from the keys) are
left out. Repairing a partition pulls, from each other replica, the entries of every bucket whose
digest differs and merges them in; then pushes this node's entries of the buckets that still differ
to each replica, which merges them likewise. Merging is a join — versions decide edges and registry
entries, tombstones beat what they delete, inboxes take the union of what their consumer's live
follow edges allow, trimmed to the cap — so replicas that merged each other's data hold the same
entries, whatever order anything arrived in. Counters move with every key merged. Each family's
merge rule lives with its write rules (node/feed_store.py lists them); this module only compares
and moves entries.

The background pass runs over the partitions this node is first replica of, one at a time and at
`repair_max_keys_per_second`, so it never starves client traffic; a node that restarts runs one over
all its partitions. `feedring repair` runs the same thing on demand (router/admin_service.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping

from common.config import Replication
from common.errors import FeedringError
from common.storage_client import StorageClient
from node import keys, tombstones
from node.feed_store import FeedStore
from node.inboxes import logical_view
from node.ownership import Ownership
from node.reads_first import ReadsFirst
from protos import storage_pb2

__all__ = [
    "BUCKETS",
    "digests",
    "digests_and_size",
    "digests_in_slices",
    "read_buckets",
    "merge",
    "holds_data",
    "missed_nothing",
    "Repairer",
]

log = logging.getLogger(__name__)

BUCKETS = 64
SCAN_SLICE = 2000  # keys digested per event-loop turn (about 2 ms)
# Derived from the other keys (M), each replica's own work (D), or a best-effort retry guard (R).
_LEFT_OUT = {keys.META, keys.DELIVERIES, keys.REQUESTS}
_MASK = (1 << 64) - 1


def bucket_of(key: bytes) -> int:
    return zlib.crc32(keys.user_of(key)) % BUCKETS


def digests(data: FeedStore, partition: int) -> list[int]:
    return digests_and_size(data, partition)[0]


def digests_and_size(data: FeedStore, partition: int) -> tuple[list[int], int]:
    """The partition's bucket digests, and how many keys went into them."""
    sums = [0] * BUCKETS
    count = _add_to_digests(sums, _compared(data, partition, tombstones=False))
    return sums, count


def _compared(data: FeedStore, partition: int, tombstones: bool) -> Iterator[tuple[bytes, bytes]]:
    """The partition's keys as replicas compare them: inboxes as a reader sees them (node/inboxes.py:
    replicas trim at different moments), digests without inbox tombstones (a replica holding a
    tombstone and none of its entry reads the same as one holding neither)."""
    cap = data.inboxes.timeline_cap
    return logical_view(data.store.scan(keys.partition_prefix(partition)), cap, tombstones)


def _add_to_digests(sums: list[int], entries: Iterable[tuple[bytes, bytes]]) -> int:
    count = 0
    for key, value in entries:
        family = keys.family_of(key)
        if family in _LEFT_OUT:
            continue
        if family == keys.POST_TOMBSTONES:
            # A post tombstone's date is each replica's latest of the deletes it took: a retried
            # delete (a new stamp) may leave replicas a few seconds apart, which is the same delete.
            value = b""
        h = int.from_bytes(hashlib.blake2b(key + b"\x00" + value, digest_size=8).digest(), "big")
        b = bucket_of(key)
        sums[b] = (sums[b] + h) & _MASK
        count += 1
    return count


async def digests_in_slices(
    data: FeedStore, partition: int, reads_first: ReadsFirst, horizon: int = 0
) -> tuple[list[int], int]:
    """As digests_and_size, as background work on the event loop: a slice of SCAN_SLICE keys at a
    time under node/reads_first.py, so timeline reads never wait behind a repair. (Run in a thread,
    the scan held the GIL against the event loop for the whole partition: with three replicas every
    node repairs every partition, and reads lost up to half their throughput while it ran.)
    Tombstones written before `horizon` (ms; node/tombstones.py) are left out and collected."""
    sums = [0] * BUCKETS
    count = 0
    scanned = _compared(data, partition, tombstones=False)
    collectable: list[bytes] = []
    entries = tombstones.sift(scanned, horizon, collectable.append)
    try:
        while True:
            async with reads_first.slice():
                chunk = list(itertools.islice(entries, SCAN_SLICE))
                count += _add_to_digests(sums, chunk)
                if collectable:
                    data.collect_tombstones(collectable, horizon)
                    collectable.clear()
            if len(chunk) < SCAN_SLICE:
                return sums, count
    finally:
        close = getattr(scanned, "close", None)
        if close is not None:
            close()  # the LevelDB iterator pins old data until it is closed


def read_buckets(data: FeedStore, partition: int, buckets: Iterable[int]) -> list[storage_pb2.KeyValue]:
    wanted = set(buckets)
    return [
        storage_pb2.KeyValue(key=key, value=value)
        for key, value in _compared(data, partition, tombstones=True)
        if keys.family_of(key) not in _LEFT_OUT and bucket_of(key) in wanted
    ]


def merge(data: FeedStore, entries: Iterable[tuple[bytes, bytes]]) -> int:
    """Merges another replica's entries into this one's, family by family in the order of
    FeedStore.merge_rules; returns how many changed something here."""
    rules = data.merge_rules()
    by_family: dict[bytes, list[tuple[bytes, bytes]]] = {}
    for key, value in entries:
        by_family.setdefault(keys.family_of(key), []).append((key, value))
    changed = 0
    for family, rule in rules.items():
        for key, value in by_family.get(family, []):
            changed += rule(key, value)
    return changed


# What every node writes at its start, from cluster.toml: its pinned hot users' registry entries and
# user records. Any post, follow or relation writes some other family too.
_WRITTEN_AT_START = {keys.FAMILY_NAMES[keys.HOT_REGISTRY], keys.FAMILY_NAMES[keys.META]}


def holds_data(keys_by_family: Mapping[str, int]) -> bool:
    """Whether a store's key counts (status' keys_by_family) show any data a node could have missed."""
    return any(count for family, count in keys_by_family.items() if family not in _WRITTEN_AT_START)


def missed_nothing(started_empty: bool, peers: list[str], peers_had_data: dict[str, bool]) -> bool:
    """Whether a starting node can have missed no write: it held no data, and every peer answered
    (after this node began taking writes) that it held none either. A peer that did not answer, or
    held data, may hold what this node lacks (a disk replaced, a node down while the others wrote)."""
    return started_empty and all(peers_had_data.get(peer) is False for peer in peers)


class Repairer:
    def __init__(
        self,
        node_id: str,
        data: FeedStore,
        peers: StorageClient,
        ownership: Ownership,
        interval_s: float,
        max_keys_per_second: int,
        reads_first: ReadsFirst | None = None,
        gc: tombstones.Tombstones | None = None,
    ) -> None:
        self.node_id = node_id
        # Which tombstones may go: a partition's pass that reached every replica counts (node/tombstones.py).
        self.tombstones = gc or tombstones.Tombstones(Replication.gc_grace_s)
        self.data = data
        self.peers = peers
        self.ownership = ownership
        self.reads_first = reads_first or ReadsFirst()  # a repair's scans stand back for reads
        self.interval_s = interval_s
        self.max_keys_per_second = max_keys_per_second
        self.stats = storage_pb2.ReplicationStats()
        self._lock = asyncio.Lock()  # one repair at a time on a node
        self._startup_pass = True  # until the node learns it missed nothing (skip_startup_pass)

    # -- the background pass ---------------------------------------------------------------------

    def skip_startup_pass(self) -> None:
        """This node missed no write: its store and every peer's held no data when it started (a new
        cluster). A pass then would only compare replicas that took every write, while the first
        load arrives: on a cluster loaded with millions of keys, that was most of every node's CPU
        for minutes (the bench's read and delivery phases ran beside it)."""
        self._startup_pass = False

    async def run(self, first_after_s: float = 60.0) -> None:
        """A minute after a start, a pass over every partition held (catching up on what hints did not
        bring: hints replay within seconds, so this backstop waits rather than compete with the
        burst of traffic a restart meets), unless the node missed nothing (skip_startup_pass);
        then, every `interval_s`, one over the partitions this node is first replica of."""
        await asyncio.sleep(first_after_s)
        everything = self._startup_pass
        if not everything:
            log.info("no start-up repair pass node=%s: it and its peers started with no data", self.node_id)
            if self.interval_s <= 0:
                return
            await asyncio.sleep(self.interval_s)
        while True:
            cluster_map, owned = self.peers.map, self.ownership.owned
            mine = sorted(owned if everything else (p for p in owned if cluster_map.primary(p) == self.node_id))
            try:
                async for _ in self.repair(mine, self.max_keys_per_second):
                    pass
            except Exception:  # the loop must survive anything: the next pass tries again
                log.exception("repair pass failed node=%s", self.node_id)
            everything = False
            if self.interval_s <= 0:
                return
            await asyncio.sleep(self.interval_s)

    # -- one repair ------------------------------------------------------------------------------

    async def repair(
        self, partitions: list[int], max_keys_per_second: int = 0, catch_up: bool = False
    ) -> AsyncIterator[storage_pb2.RepairProgress]:
        """Repairs `partitions` with their other replicas. `catch_up`: partitions a membership change
        is bringing here, pulled from their current replicas only (the transfer brought most of it)."""
        async with self._lock:
            progress = storage_pb2.RepairProgress(partitions_total=len(partitions))
            unreachable: set[str] = set()
            self.stats.repairing = True
            started = time.monotonic()
            scanned = 0
            try:
                for part in partitions:
                    if part not in self.ownership.owned and not catch_up:
                        progress.partitions_done += 1
                        continue
                    differed, moved, keys_seen = await self._repair_partition(part, unreachable, pull_only=catch_up)
                    if catch_up:
                        await asyncio.to_thread(self.data.recount_counters, part)
                    progress.partitions_done += 1
                    progress.out_of_sync += differed
                    progress.keys_repaired += moved
                    self.stats.keys_repaired += moved
                    scanned += keys_seen
                    if max_keys_per_second:
                        ahead = scanned / max_keys_per_second - (time.monotonic() - started)
                        if ahead > 0:
                            await asyncio.sleep(ahead)
                    if progress.partitions_done % 16 == 0 or progress.partitions_done == len(partitions):
                        del progress.unreachable[:]
                        progress.unreachable.extend(sorted(unreachable))
                        yield progress
                progress.done = True
                del progress.unreachable[:]
                progress.unreachable.extend(sorted(unreachable))
                self.stats.partitions_checked = progress.partitions_total
                self.stats.partitions_out_of_sync = progress.out_of_sync
                self.stats.last_repair_ms = int(time.time() * 1000)
                if progress.out_of_sync or unreachable:
                    log.info(
                        "repair done node=%s partitions=%d out_of_sync=%d keys=%d unreachable=%s",
                        self.node_id,
                        len(partitions),
                        progress.out_of_sync,
                        progress.keys_repaired,
                        ",".join(sorted(unreachable)) or "-",
                    )
                yield progress
            finally:
                self.stats.repairing = False

    async def _repair_partition(
        self, part: int, unreachable: set[str], pull_only: bool = False
    ) -> tuple[int, int, int]:
        """Pull what differs from every other replica, then push what still differs to each.
        Returns (1 if any replica differed, entries moved, keys scanned). A pass that reached every
        replica (and was not only a pull) leaves them equal as of its start: the partition is in
        sync then, which lets the next pass collect the tombstones written before it."""
        replicas = self.peers.map.replicas(part)
        others = [n for n in replicas if n != self.node_id]
        started_ms = int(self.tombstones.wall() * 1000)
        since = 0 if pull_only else self.tombstones.in_sync_since(part, replicas)
        horizon = self.tombstones.horizon_since(since)
        if not others:  # a single copy: nothing to compare with, always in sync
            scanned = 0
            if horizon and self.tombstones.sweep_due(part, started_ms):
                _, scanned = await digests_in_slices(self.data, part, self.reads_first, horizon)
            if not pull_only:
                self.tombstones.note_in_sync(part, started_ms, replicas)
            return 0, 0, scanned
        moved = 0
        differed = 0
        scanned = 0
        reached_all = True
        for push in (False,) if pull_only else (False, True):
            if push and not differed:
                break  # every peer matched in the pull: nothing to push (the common case, half the cost)
            mine, size = await digests_in_slices(self.data, part, self.reads_first, horizon)
            scanned += size
            for peer in others:
                if peer in unreachable:
                    reached_all = False
                    continue
                try:
                    reply = await self.peers.get_digests.on_node(
                        peer, storage_pb2.GetDigestsRequest(partitions=[part], in_sync_since_ms=[since])
                    )
                    theirs = list(reply.digests[0].buckets) if reply.digests else [0] * BUCKETS
                    diff = [b for b in range(BUCKETS) if theirs[b] != mine[b]]
                    if not diff:
                        continue
                    differed = 1
                    if push:
                        entries = await asyncio.to_thread(read_buckets, self.data, part, diff)
                        await self.peers.merge_entries.on_node(
                            peer, storage_pb2.MergeEntriesRequest(partition=part, entries=entries)
                        )
                    else:
                        pulled = await self.peers.read_buckets.on_node(
                            peer, storage_pb2.ReadBucketsRequest(partition=part, buckets=diff)
                        )
                        entries = list(pulled.entries)
                        merge(self.data, ((e.key, e.value) for e in entries))
                    moved += len(entries)
                except FeedringError as exc:
                    log.info("repair cannot reach peer node=%s peer=%s error=%s", self.node_id, peer, exc.message)
                    unreachable.add(peer)
                    reached_all = False
        if reached_all and not pull_only:
            self.tombstones.note_in_sync(part, started_ms, replicas)
        return differed, moved, scanned
