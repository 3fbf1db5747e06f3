"""One atomic write to a node's store, and the per-user counters it keeps current.

A ``Batch`` gathers puts and deletes, answers reads with them applied (so one operation sees its own
writes), counts keys per family as they appear and go (for status), and writes everything in one
atomic LevelDB batch. ``UserCounters`` are the per-key counters (family M) that only move when a
key appears or goes, which is what keeps every write idempotent. ``Batches`` makes batches over one
store and holds the per-family key counts they keep current: it is what every storage piece of a
node (posts, inboxes, edges, registry, delivery records) is given to write with.
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from node import keys
from node.store import Snapshot, Store

__all__ = ["Batch", "Batches", "UserCounters", "SALT_COUNT"]

_COUNTERS = struct.Struct(">QQQQQ")
_COUNTERS_V1 = struct.Struct(">QQQQ")  # written before edge versions existed
SALT_COUNT = struct.Struct(">QQ")  # a salted key's reported follower count, and its version


@dataclass
class UserCounters:
    follower_count: int = 0  # follower edges under this key (a salted user: its home key's only)
    following_count: int = 0
    post_count: int = 0
    inbox_size: int = 0  # no longer kept (inboxes are written blind, node/inboxes.py): always 0
    edge_version: int = 0  # grows with every follower edge change: orders a salted key's reports

    def encode(self) -> bytes:
        return _COUNTERS.pack(
            max(self.follower_count, 0),
            max(self.following_count, 0),
            max(self.post_count, 0),
            max(self.inbox_size, 0),
            self.edge_version,
        )

    @classmethod
    def decode(cls, raw: bytes) -> UserCounters:
        layout = _COUNTERS if len(raw) == _COUNTERS.size else _COUNTERS_V1
        return cls(*layout.unpack(raw))


class Batch:
    """Puts and deletes gathered for one atomic write, readable before they are written."""

    def __init__(
        self, store: Store, family_counts: Iterable[Counter[bytes]], superseded: Callable[[int], None] | None = None
    ) -> None:
        self.store = store
        self.family_counts = family_counts  # counters the keys this batch adds or removes go into
        self.superseded = superseded or (lambda version: None)  # told of a stored version newer than a write's
        self.family_delta: Counter[bytes] = Counter()
        self.puts: dict[bytes, bytes] = {}
        self.deletes: set[bytes] = set()
        self.counters: dict[bytes, UserCounters] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self.puts:
            return self.puts[key]
        if key in self.deletes:
            return None
        return self.store.get(key)

    def put_new(self, key: bytes, value: bytes) -> bool:
        """Puts a key that must not exist yet; False (and nothing written) if it does."""
        if self.get(key) is not None:
            return False
        self.put(key, value)
        self.family_delta[keys.family_of(key)] += 1
        return True

    def put(self, key: bytes, value: bytes) -> None:
        self.deletes.discard(key)
        self.puts[key] = value

    def delete_blind(self, key: bytes) -> None:
        """Deletes a key whether or not it exists, counting nothing (a key no family count holds)."""
        self.puts.pop(key, None)
        self.deletes.add(key)

    def delete_existing(self, key: bytes) -> bool:
        if self.get(key) is None:
            return False
        self.puts.pop(key, None)
        self.deletes.add(key)
        self.family_delta[keys.family_of(key)] -= 1
        return True

    def counters_of(self, partition: int, user_key: str) -> UserCounters:
        key = keys.meta_key(partition, user_key)
        if key not in self.counters:
            raw = self.get(key)
            if raw is None:
                self.family_delta[keys.META] += 1
            self.counters[key] = UserCounters.decode(raw) if raw is not None else UserCounters()
        return self.counters[key]

    def commit(self) -> None:
        for key, counters in self.counters.items():
            self.puts[key] = counters.encode()
        if self.puts or self.deletes:
            self.store.write(self.puts.items(), self.deletes)
            for counts in self.family_counts:
                counts.update(self.family_delta)


class Batches:
    """Atomic batches over one store, and the keys per family they have added and removed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Keys per family on this node, for status; counted once at start, then kept current.
        self.family_counts: Counter[bytes] = Counter()
        self._recounts: list[Counter[bytes]] = []  # what commits while a recount runs
        self._superseding = 0  # the newest stored version that beat a versioned write, since taken

    def new(self) -> Batch:
        """An atomic write, readable before it is committed; it keeps the family counts current."""
        return Batch(self.store, [self.family_counts, *self._recounts], self._note_superseding)

    def _note_superseding(self, version: int) -> None:
        self._superseding = max(self._superseding, version)

    def take_superseding(self) -> int:
        """The newest version a versioned write met that beat its own, since the last call (0: none).
        Store calls run one at a time on the event loop (node/local_writes.py): take, apply, take."""
        version, self._superseding = self._superseding, 0
        return version

    def write_blind(
        self, family: bytes, puts: list[tuple[bytes, bytes]], deletes: Sequence[bytes] = (), *, counted: int = 0
    ) -> None:
        """An atomic write of keys of one `family` that reads nothing first (the inbox: entries and
        tombstones are idempotent puts). Its keys are counted as `counted` more (callers that cannot
        know what the write replaced say so: the count of that family is an estimate)."""
        self.store.write(puts, deletes)
        for counts in (self.family_counts, *self._recounts):
            counts[family] += counted

    def user_counters(self, partition: int, user_key: str) -> UserCounters | None:
        raw = self.store.get(keys.meta_key(partition, user_key))
        return UserCounters.decode(raw) if raw is not None else None

    def count_keys(self) -> None:
        """Counts every key per family (at start, before anything writes)."""
        self.family_counts.clear()
        self.family_counts.update(_count(self.store))

    async def recount_keys(self) -> None:
        """Counts every key per family again, while writes go on (after a transfer's raw copy or a
        drop): a snapshot is counted in a thread, and what commits meanwhile is added to it."""
        snapshot = self.store.snapshot()
        since: Counter[bytes] = Counter()
        self._recounts.append(since)
        try:
            counts = await asyncio.to_thread(_count, snapshot)
        finally:
            # By identity: two recounts' tallies can be equal (list.remove would drop the other's).
            self._recounts = [tally for tally in self._recounts if tally is not since]
            snapshot.close()
        counts.update(since)
        self.family_counts.clear()
        self.family_counts.update(counts)


def _count(store: Store | Snapshot) -> Counter[bytes]:
    counts: Counter[bytes] = Counter()
    for key, _ in store.scan(b""):
        if not keys.is_node_wide(key):
            counts[keys.family_of(key)] += 1
    return counts
