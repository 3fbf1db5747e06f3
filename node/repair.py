"""Anti-entropy: replicas compare per-partition digests and copy only what differs (Dynamo, Riak AAE).

A partition's keys are split into BUCKETS buckets by user (so a user's edges, inbox and posts fall
in one bucket), and a bucket's digest is the sum of a 64-bit hash of each key and value in it. The
delivery records (D: each replica's own work list) and the counters (M: derived from the keys) are
left out. Repairing a partition pulls, from each other replica, the entries of every bucket whose
digest differs and merges them in; then pushes this node's entries of the buckets that still differ
to each replica, which merges them likewise. Merging is a join — versions decide edges and registry
entries, tombstones beat what they delete, inboxes take the union of what their consumer's live
follow edges allow, trimmed to the cap — so replicas that merged each other's data hold the same
entries, whatever order anything arrived in. Counters move with every key merged.

The background pass runs over the partitions this node is first replica of, one at a time and at
`repair_max_keys_per_second`, so it never starves client traffic; a node that restarts runs one over
all its partitions. `feedring repair` runs the same thing on demand (router/admin_service.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable

from common.errors import FeedringError
from common.storage_client import StorageClient
from node import keys
from node.batch import SALT_COUNT, UserCounters
from node.feed_store import FeedStore
from node.versioned import is_alive, read_edge, read_registry, set_edge
from protos import feed_pb2, storage_pb2

__all__ = ["BUCKETS", "digests", "read_buckets", "merge", "Repairer"]

log = logging.getLogger(__name__)

BUCKETS = 64
_LEFT_OUT = {keys.META, keys.DELIVERIES}
_MASK = (1 << 64) - 1
# Tombstones first (they beat what they delete), then edges (inboxes follow them), then the rest.
_MERGE_ORDER = [
    keys.POST_TOMBSTONES,
    keys.DELETED,
    keys.FOLLOWING,
    keys.FOLLOWERS,
    keys.HOT_FOLLOWING,
    keys.HOT_REGISTRY,
    keys.SALT_COUNTS,
    keys.POSTS,
    keys.INBOX,
]


def _user_of(key: bytes) -> bytes:
    return key[3:].split(b"\x00", 1)[0]


def bucket_of(key: bytes) -> int:
    return zlib.crc32(_user_of(key)) % BUCKETS


def digests(feed_store: FeedStore, partition: int) -> list[int]:
    return digests_and_size(feed_store, partition)[0]


def digests_and_size(feed_store: FeedStore, partition: int) -> tuple[list[int], int]:
    """The partition's bucket digests, and how many keys went into them."""
    sums = [0] * BUCKETS
    count = 0
    for key, value in feed_store.store.scan(keys.partition_prefix(partition)):
        if keys.family_of(key) in _LEFT_OUT:
            continue
        h = int.from_bytes(hashlib.blake2b(key + b"\x00" + value, digest_size=8).digest(), "big")
        b = bucket_of(key)
        sums[b] = (sums[b] + h) & _MASK
        count += 1
    return sums, count


def read_buckets(feed_store: FeedStore, partition: int, buckets: Iterable[int]) -> list[storage_pb2.KeyValue]:
    wanted = set(buckets)
    return [
        storage_pb2.KeyValue(key=key, value=value)
        for key, value in feed_store.store.scan(keys.partition_prefix(partition))
        if keys.family_of(key) not in _LEFT_OUT and bucket_of(key) in wanted
    ]


def merge(feed_store: FeedStore, entries: Iterable[tuple[bytes, bytes]]) -> int:
    """Merges another replica's entries into this one's; returns how many changed something here."""
    by_family: dict[bytes, list[tuple[bytes, bytes]]] = {}
    for key, value in entries:
        by_family.setdefault(keys.family_of(key), []).append((key, value))
    changed = 0
    for family in _MERGE_ORDER:
        for key, value in by_family.get(family, []):
            changed += _merge_one(feed_store, family, key, value)
    return changed


def _merge_one(feed_store: FeedStore, family: bytes, key: bytes, value: bytes) -> int:
    part = int.from_bytes(key[:2], "big")
    user = _user_of(key).decode("utf-8")
    store = feed_store.store
    if family == keys.POST_TOMBSTONES:
        if store.get(key) is not None:
            return 0
        feed_store.remove_post(user, keys.post_id_of(key))  # the tombstone, and the post's retraction
        return 1
    if family == keys.DELETED:
        if store.get(key) is not None:
            return 0
        feed_store.remove_from_inboxes(keys.post_id_of(key), [user])
        return 1
    if family in (keys.FOLLOWING, keys.FOLLOWERS, keys.HOT_FOLLOWING):
        return _merge_edge(feed_store, family, part, user, key, value)
    if family == keys.HOT_REGISTRY:
        theirs, mine = read_registry(value), read_registry(store.get(key))
        if theirs is None or (mine is not None and mine.version >= theirs.version):
            return 0
        batch = feed_store.new_batch()
        if not batch.put_new(key, value):
            batch.put(key, value)
        batch.counters_of(part, user)
        batch.commit()
        return 1
    if family == keys.SALT_COUNTS:
        mine_raw = store.get(key)
        if mine_raw is not None and SALT_COUNT.unpack(mine_raw)[1] >= SALT_COUNT.unpack(value)[1]:
            return 0
        salted_key = key[len(keys.user_prefix(part, keys.SALT_COUNTS, user)) :].decode("utf-8")
        count, version = SALT_COUNT.unpack(value)
        feed_store.report_follower_count(user, salted_key, count, version)
        return 1
    if family == keys.POSTS:
        if store.get(key) is not None:
            return 0
        if store.get(keys.post_key(part, keys.POST_TOMBSTONES, user, keys.post_id_of(key))) is not None:
            return 0
        batch = feed_store.new_batch()
        batch.put_new(key, value)
        batch.counters_of(part, user).post_count += 1
        batch.commit()
        return 1
    if family == keys.INBOX:
        if store.get(key) is not None:
            return 0
        return feed_store.insert_inbox([feed_pb2.Post.FromString(value)], [user])
    return 0


def _merge_edge(feed_store: FeedStore, family: bytes, part: int, user: str, key: bytes, value: bytes) -> int:
    theirs = read_edge(value)
    assert theirs is not None
    batch = feed_store.new_batch()
    other = keys.edge_user_of(key, len(keys.user_prefix(part, family, user)))
    if family == keys.HOT_FOLLOWING and theirs.alive:
        # Merged-at-read only while the follow edge lives: beside a dead one, it is dead as of then.
        follow = read_edge(batch.get(keys.edge_key(part, keys.FOLLOWING, user, other)))
        if follow is None or not follow.alive:
            if follow is None or follow.version <= theirs.version:
                return 0
            set_edge(batch, key, follow.version, False)
            batch.commit()
            return 1
    before = read_edge(batch.get(key))
    if before is not None and before.version >= theirs.version:
        return 0
    delta, _ = set_edge(batch, key, theirs.version, theirs.alive, theirs.extra)
    if family == keys.FOLLOWING:
        if delta > 0:
            batch.counters_of(part, user).following_count += 1
        elif delta < 0:
            feed_store.graph.unfollowed(batch, part, user, other, theirs.version)
    elif family == keys.FOLLOWERS and delta:
        feed_store.graph.followers_changed(batch, part, user, delta, theirs.version)
    batch.commit()
    return 1


def recount(feed_store: FeedStore, partition: int) -> int:
    """Rewrites every counter of the partition from the keys it holds (after a transfer merged with
    direct writes, the counters copied from the source no longer match). Returns users recounted."""
    counts: dict[str, UserCounters] = {}
    for key, value in feed_store.store.scan(keys.partition_prefix(partition)):
        family = keys.family_of(key)
        if family == keys.META:
            user = key[3:].decode("utf-8")
            old = UserCounters.decode(value)
            counts.setdefault(user, UserCounters()).edge_version = old.edge_version
            continue
        user = _user_of(key).decode("utf-8")
        if family == keys.POSTS:
            counts.setdefault(user, UserCounters()).post_count += 1
        elif family == keys.INBOX:
            counts.setdefault(user, UserCounters()).inbox_size += 1
        elif family in (keys.FOLLOWERS, keys.FOLLOWING) and is_alive(value):
            counters = counts.setdefault(user, UserCounters())
            if family == keys.FOLLOWERS:
                counters.follower_count += 1
            else:
                counters.following_count += 1
    batch = feed_store.new_batch()
    for user, counters in counts.items():
        batch.counters[keys.meta_key(partition, user)] = counters
    batch.commit()
    return len(counts)


class Repairer:
    def __init__(
        self,
        node_id: str,
        feed_store: FeedStore,
        peers: StorageClient,
        owned: Callable[[], frozenset[int]],
        interval_s: float,
        max_keys_per_second: int,
    ) -> None:
        self.node_id = node_id
        self.feed_store = feed_store
        self.peers = peers
        self.owned = owned
        self.interval_s = interval_s
        self.max_keys_per_second = max_keys_per_second
        self.stats = storage_pb2.ReplicationStats()
        self._lock = asyncio.Lock()  # one repair at a time on a node

    # -- the background pass ---------------------------------------------------------------------

    async def run(self, first_after_s: float = 10.0) -> None:
        """After a start, a pass over every partition held (catching up on what was missed while
        down); then, every `interval_s`, one over the partitions this node is first replica of."""
        await asyncio.sleep(first_after_s)
        everything = True
        while True:
            cluster_map = self.peers.map
            mine = sorted(
                self.owned() if everything else (p for p in self.owned() if cluster_map.primary(p) == self.node_id)
            )
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
                    if part not in self.owned() and not catch_up:
                        progress.partitions_done += 1
                        continue
                    differed, moved, keys_seen = await self._repair_partition(part, unreachable, pull_only=catch_up)
                    if catch_up:
                        await asyncio.to_thread(recount, self.feed_store, part)
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
        Returns (1 if any replica differed, entries moved, keys scanned)."""
        others = [n for n in self.peers.map.replicas(part) if n != self.node_id]
        if not others:
            return 0, 0, 0  # a single copy: nothing to compare with
        moved = 0
        differed = 0
        scanned = 0
        for push in (False,) if pull_only else (False, True):
            if push and not differed:
                break  # every peer matched in the pull: nothing to push (the common case, half the cost)
            mine, size = await asyncio.to_thread(digests_and_size, self.feed_store, part)
            scanned += size
            for peer in others:
                if peer in unreachable:
                    continue
                try:
                    reply = await self.peers.get_digests.on_node(peer, storage_pb2.GetDigestsRequest(partitions=[part]))
                    theirs = list(reply.digests[0].buckets) if reply.digests else [0] * BUCKETS
                    diff = [b for b in range(BUCKETS) if theirs[b] != mine[b]]
                    if not diff:
                        continue
                    differed = 1
                    if push:
                        entries = await asyncio.to_thread(read_buckets, self.feed_store, part, diff)
                        await self.peers.merge_entries.on_node(
                            peer, storage_pb2.MergeEntriesRequest(partition=part, entries=entries)
                        )
                    else:
                        pulled = await self.peers.read_buckets.on_node(
                            peer, storage_pb2.ReadBucketsRequest(partition=part, buckets=diff)
                        )
                        entries = list(pulled.entries)
                        merge(self.feed_store, ((e.key, e.value) for e in entries))
                    moved += len(entries)
                except FeedringError as exc:
                    log.info("repair cannot reach peer node=%s peer=%s error=%s", self.node_id, peer, exc.message)
                    unreachable.add(peer)
        return differed, moved, scanned
