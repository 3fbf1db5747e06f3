"""Hinted handoff: writes this node coordinated that a replica did not take, kept until it does.

A hint is the write itself (its name and encoded request, node/writes.py) under the
target node's id, in this node's LevelDB (node-wide keys, node/keys.py), so it survives a restart of
this node. The replayer sends a target its hints, oldest first and in batches, whenever the failure
detector lets a call to it through (the target answers again), and removes each one the target
applied. A hint the target refuses for good (the partition is no longer its, or the write is
malformed) is dropped with a log line: membership transfers and repair cover that data, and so is a
hint older than `replication.max_hint_age` (3 h by default, as Cassandra's hint window). Hints are
best effort, as in Dynamo and Cassandra; anti-entropy (node/repair.py) is what guarantees convergence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from common.errors import FeedringError, WrongEpoch, error_for_code
from common.storage_client import StorageClient
from node import keys
from node.store import Store
from node.writes import by_name
from protos import storage_pb2

__all__ = ["HintLog", "HintReplayer"]

log = logging.getLogger(__name__)

# A replay call carries at most this many hints, or this many bytes of them: a hint can be a page
# of 2,000 followers' inbox writes, and the target must apply a call well inside its deadline.
_BATCH = 256
_BATCH_BYTES = 256 << 10
_REPLAY_TIMEOUT_S = 30.0


class HintLog:
    def __init__(self, store: Store, max_per_target: int = 1_000_000, max_age_s: float = 3 * 3600.0) -> None:
        self.store = store
        # Older hints are dropped (Cassandra's max_hint_window): a node away that long is caught
        # up by repair, and a write replayed hours late is more likely to undo a newer one.
        self.max_age_s = max_age_s
        # Past this many hints for one node, new ones are dropped: repair brings it up to date
        # (Cassandra bounds hints by time for the same reason: a node down for days).
        self.max_per_target = max_per_target
        self.counts: Counter[str] = Counter()
        # Hints kept for a forward still in flight (node/replication.py): not replayed while it may
        # still land; settled when it ends. After a restart none is in flight, and all replay.
        self._provisional: set[bytes] = set()
        self._sequence = 0
        self.added = 0
        self.replayed = 0
        self.dropped = 0
        self.expired = 0

    def load(self) -> None:
        """Counts the hints a previous run left (a scan of the hint range only)."""
        counts: Counter[str] = Counter()
        for key, _ in self.store.scan(keys.HINTS_PREFIX):
            counts[keys.hint_target_of(key)] += 1
            self._sequence = max(self._sequence, keys.hint_sequence_of(key))
        self.counts = counts

    def add(self, target: str, write: storage_pb2.ReplicaWrite, provisional: bool = False) -> bytes | None:
        """Keeps `write` for `target`; returns its key (None: dropped at the limit). A `provisional`
        hint stands for a forward still in flight: it is not replayed until settle() says the
        forward failed (or this process restarts)."""
        if self.counts[target] >= self.max_per_target:
            self.dropped += 1
            if self.dropped % 10_000 == 1:
                log.warning(
                    "hints for %s are at their limit (%d): dropping new ones; run `feedring repair --node %s` "
                    "once it is back",
                    target,
                    self.max_per_target,
                    target,
                )
            return None
        self._sequence = max(self._sequence + 1, time.time_ns() // 1000)
        key = keys.hint_key(target, self._sequence)
        self.store.write([(key, write.SerializeToString())])
        self.counts[target] += 1
        self.added += 1
        if provisional:
            self._provisional.add(key)
        return key

    def settle(self, target: str, key: bytes, applied: bool) -> None:
        """The forward a provisional hint stood for ended: applied, the hint goes; failed, it stays
        as an ordinary hint and replays."""
        self._provisional.discard(key)
        if applied and self.store.get(key) is not None:  # expiry may have taken it meanwhile
            self.remove(target, [key])

    def oldest(self, target: str, limit: int, max_bytes: int = 1 << 62) -> list[tuple[bytes, storage_pb2.ReplicaWrite]]:
        out: list[tuple[bytes, storage_pb2.ReplicaWrite]] = []
        size = 0
        for key, raw in self.store.scan(keys.hint_prefix(target)):
            if key in self._provisional:
                continue
            if out and size + len(raw) > max_bytes:
                break
            out.append((key, storage_pb2.ReplicaWrite.FromString(raw)))
            size += len(raw)
            if len(out) >= limit:
                break
        return out

    def remove(self, target: str, hint_keys: list[bytes]) -> None:
        if hint_keys:
            self.store.write(deletes=hint_keys)
            self.counts[target] = max(self.counts[target] - len(hint_keys), 0)
            if not self.counts[target]:
                del self.counts[target]

    def expire(self, now_us: int | None = None) -> int:
        """Drops every hint older than max_age_s (a hint's sequence is its time in microseconds);
        returns how many went. Reads only the expired keys and one more per target."""
        if not self.max_age_s:
            return 0
        cutoff = (now_us if now_us is not None else time.time_ns() // 1000) - int(self.max_age_s * 1_000_000)
        gone = 0
        for target in list(self.counts):
            old: list[bytes] = []
            for key in self.store.scan_keys(keys.hint_prefix(target)):
                if keys.hint_sequence_of(key) >= cutoff or len(old) >= 10_000:
                    break
                old.append(key)
            if old:
                self.remove(target, old)
                gone += len(old)
                log.warning(
                    "hints for %s older than %.0f s dropped count=%d: run `feedring repair --node %s` once it is back",
                    target,
                    self.max_age_s,
                    len(old),
                    target,
                )
        self.expired += gone
        return gone

    def in_flight_by_target(self) -> Counter[str]:
        """Of `counts`: the provisional hints, each standing for a forward still on its way."""
        return Counter(keys.hint_target_of(key) for key in self._provisional)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class HintReplayer:
    def __init__(self, hints: HintLog, peers: StorageClient, every_s: float = 0.5) -> None:
        self.hints = hints
        self.peers = peers  # routes by this node's map
        self.every_s = every_s

    async def run(self) -> None:
        while True:
            self.hints.expire()
            for target in sorted(self.hints.counts):
                try:
                    await self.replay(target)
                except Exception:  # the loop must survive anything; the hints stay
                    log.exception("hint replay failed target=%s", target)
            await asyncio.sleep(self.every_s)

    async def replay(self, target: str) -> None:
        """Sends `target` its hints while it takes them."""
        member = self.peers.map.member(target)
        if member is None:
            dropped = self.hints.oldest(target, 1 << 30)
            self.hints.remove(target, [k for k, _ in dropped])
            self.hints.dropped += len(dropped)
            log.warning("hints dropped: node %s is no longer a member count=%d", target, len(dropped))
            return
        while self.hints.counts.get(target) and self.peers.health.allows(member.address):
            batch = self.hints.oldest(target, _BATCH, _BATCH_BYTES)
            if not batch:
                return  # only provisional hints left: their forwards are still in flight
            request = storage_pb2.ApplyWritesRequest(writes=[w for _, w in batch], hinted=True)
            try:
                reply = await self.peers.apply_writes.on_node(target, request, timeout_s=_REPLAY_TIMEOUT_S)
            except FeedringError as exc:
                log.debug("hint replay postponed target=%s error=%s", target, exc.message)
                return
            done: list[bytes] = []
            cut: list[storage_pb2.ReplicaWrite] = []
            for (key, write), result in zip(batch, reply.results, strict=False):
                if result.code == 0:
                    done.append(key)
                    self.hints.replayed += 1
                    continue
                error = error_for_code(result.code, result.message, result.epoch)
                log.debug("hint refused target=%s method=%s error=%s", target, write.method, result.message)
                if error.retriable:
                    break
                kept = self.for_target(target, write) if isinstance(error, WrongEpoch) else None
                if kept is write:
                    break  # sealed for a move, or behind on the map: later
                done.append(key)
                if kept is not None:
                    # Some of its keys left the target in a move (their new replicas have them from
                    # the move's copy and repair): the rest is queued again, cut down to them.
                    cut.append(kept)
                    log.info("hint cut to the keys node %s still holds method=%s", target, write.method)
                else:
                    self.hints.dropped += 1
                    log.warning(
                        "hint dropped target=%s method=%s code=%d error=%s",
                        target,
                        write.method,
                        result.code,
                        result.message,
                    )
            self.hints.remove(target, done)
            for kept in cut:
                self.hints.add(target, kept)
            if len(done) < len(batch):
                return
            log.info("hints replayed target=%s count=%d left=%d", target, len(done), self.hints.counts.get(target, 0))

    def for_target(self, target: str, write: storage_pb2.ReplicaWrite) -> storage_pb2.ReplicaWrite | None:
        """After `target` refused the hint as not its owner: the hint cut down to the keys it still
        holds or is receiving at this node's epoch; None if none (drop it), `write` itself if all,
        or if the write cannot be cut (keep it for later: sealed for a move, or our map is behind).
        A many-key write (a page of followers' inboxes) held across a membership change would
        otherwise be refused whole, forever, for the keys that moved. Only asked after a refusal:
        it parses the write and maps every key."""
        method = by_name(write.method)
        if method is None:
            return None
        request = method.parse(write.request)
        keys = list(method.keys(request))
        held = [k for k in keys if self._replica_of(target, k)]
        if not held:
            return None
        if len(held) == len(keys) or method.subset is None:
            return write
        kept = storage_pb2.ReplicaWrite()
        kept.CopyFrom(write)
        kept.request = method.limited(request, held).SerializeToString()
        return kept

    def _replica_of(self, target: str, key: str) -> bool:
        cluster_map = self.peers.map
        part = cluster_map.partition(key)
        pending = cluster_map.pending_table[part] if cluster_map.pending_table else ()
        return target in cluster_map.replicas(part) or target in pending
