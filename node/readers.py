"""Who reads their timeline, and who went away (family A): fan-out skips readers who left.

Each reader has one record under its own partition: when it last read its timeline, whether a
rebuild of its inbox is under way, and when it first followed someone (a user who never reads goes
inactive `inactive_after` after that; a later follow is not a read and changes nothing). Reads are
recorded at most once in a while (feed/reader_activity.py sends a TouchReader write, replicated like
any other) and around a rebuild. Replicas keep the newest (read ms, phase) and the earliest first
follow they see, so the same writes in any order end the same.

Who is inactive now is derived, not written: a sweep over the records of the partitions this node
holds (ReaderSweeper) puts into `inactive` every reader whose last read is older than
`inactive_after`, and a touch takes the reader out at once. Inbox inserts skip the readers in it
(node/inboxes.py); removals never skip (a returning reader's inbox must not keep a deleted post).
The reader's next read rebuilds the inbox from the authors it follows (feed/reader_activity.py),
and rebuilds again while the record says one is under way (it failed midway, or is still running).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from node import keys
from node.batch import Batch, Batches
from node.reads_first import ReadsFirst

__all__ = ["Readers", "ReaderSweeper", "SETTLED", "REBUILDING"]

log = logging.getLogger(__name__)

_RECORD = struct.Struct(">QBQ")  # read ms, its phase, first follow ms
REBUILDING, SETTLED = 0, 1  # a record's phase: the newest (ms, phase) wins, so SETTLED ends a rebuild


class Readers:
    def __init__(self, batches: Batches, partition: Callable[[str], int], inactive_after_ms: int) -> None:
        self.batches = batches
        self.store = batches.store
        self.partition = partition
        self.inactive_after_ms = inactive_after_ms  # 0: nobody is ever inactive
        self.inactive: set[str] = set()  # readers whose inbox inserts are skipped (by the last sweep)
        self._touched: set[str] = set()  # touched while a sweep runs: the sweep must not put them back

    def last_read(self, user: str) -> tuple[int, bool] | None:
        """(ms of the last read, or of the first follow if later; a rebuild under way), or None: no
        record (the user never read nor followed)."""
        raw = self.store.get(keys.activity_key(self.partition(user), user))
        if raw is None:
            return None
        record = _Record.decode(raw)
        return record.last_ms, record.phase == REBUILDING

    def touch(self, user: str, read_ms: int, rebuilding: bool = False) -> bool:
        """Records a read at `read_ms` (a rebuild starting, or done); True if the record moved."""
        phase = REBUILDING if rebuilding else SETTLED
        changed = self._merge(self.partition(user), user, _Record(read_ms, phase, 0))
        if changed and not self._gone(read_ms, time.time() * 1000):
            self.inactive.discard(user)
            self._touched.add(user)
        return changed

    def followed(self, batch: Batch, part: int, user: str, ms: int) -> None:
        """In a follow's batch: when the user first followed (`ms` from the write's version; the
        earliest is kept, so replicas applying the same follows in any order agree). A follow is
        not a read: it does not make a reader who went away active again."""
        key = keys.activity_key(part, user)
        _put(batch, key, _Record(0, SETTLED, ms), batch.get(key))

    def _merge(self, part: int, user: str, theirs: _Record) -> bool:
        batch = self.batches.new()
        key = keys.activity_key(part, user)
        changed = _put(batch, key, theirs, batch.get(key))
        batch.commit()
        return changed

    def _gone(self, last_ms: int, now_ms: float) -> bool:
        return bool(self.inactive_after_ms) and now_ms - last_ms > self.inactive_after_ms

    # -- the sweep ---------------------------------------------------------------------------------

    def inactive_in(self, partition: int, now_ms: float) -> list[str]:
        """The readers of one partition whose last read (settled) is older than inactive_after."""
        prefix = keys.family_prefix(partition, keys.ACTIVITY)
        out = []
        for key, raw in self.store.scan(prefix):
            record = _Record.decode(raw)
            if record.phase == SETTLED and self._gone(record.last_ms, now_ms):
                out.append(keys.user_of(key).decode("utf-8"))
        return out

    def start_sweep(self) -> None:
        self._touched = set()

    def finish_sweep(self, found: Iterable[str]) -> None:
        """Replaces the inactive set with what a sweep found, less the readers touched meanwhile."""
        fresh = set(found) - self._touched
        self.inactive.clear()
        self.inactive.update(fresh)

    # -- repair merge rule (node/repair.py) ------------------------------------------------------

    def merge_record(self, key: bytes, value: bytes) -> int:
        """Another replica's record: the newer read (ms, phase) and the earlier first follow win."""
        theirs = _Record.decode(value)
        user = keys.user_of(key).decode("utf-8")
        changed = self._merge(keys.partition_of_key(key), user, theirs)
        if changed and not self._gone(theirs.read_ms, time.time() * 1000):
            self.inactive.discard(user)
        return int(changed)


@dataclass(frozen=True)
class _Record:
    read_ms: int  # the last timeline read (0: none yet)
    phase: int  # of that read: REBUILDING or SETTLED
    joined_ms: int  # the first follow (0: none)

    @property
    def last_ms(self) -> int:
        return max(self.read_ms, self.joined_ms)

    @classmethod
    def decode(cls, raw: bytes) -> _Record:
        return cls(*_RECORD.unpack(raw))

    def merged(self, other: _Record) -> _Record:
        read_ms, phase = max((self.read_ms, self.phase), (other.read_ms, other.phase))
        joined = min((j for j in (self.joined_ms, other.joined_ms) if j), default=0)
        return _Record(read_ms, phase, joined)


def _put(batch: Batch, key: bytes, theirs: _Record, raw: bytes | None) -> bool:
    """Merges `theirs` into the stored record; True if that changed it."""
    mine = _Record.decode(raw) if raw is not None else None
    merged = theirs.merged(mine) if mine is not None else theirs
    if merged == mine:
        return False
    value = _RECORD.pack(merged.read_ms, merged.phase, merged.joined_ms)
    if raw is None:
        batch.put_new(key, value)
    else:
        batch.put(key, value)
    return True


class ReaderSweeper:
    """Re-derives the inactive readers of the partitions this node holds, every `every_s`."""

    def __init__(
        self, readers: Readers, owned: Callable[[], Iterable[int]], reads_first: ReadsFirst, every_s: float
    ) -> None:
        self.readers = readers
        self.owned = owned
        self.reads_first = reads_first
        self.every_s = every_s

    async def run(self) -> None:
        if not self.readers.inactive_after_ms:
            return
        while True:
            try:
                await self.sweep()
            except Exception:  # the loop must survive anything: the next pass looks again
                log.exception("reader sweep failed")
            await asyncio.sleep(self.every_s)

    async def sweep(self) -> int:
        """One pass; returns how many readers are inactive now."""
        self.readers.start_sweep()
        now_ms = time.time() * 1000
        found: list[str] = []
        for part in sorted(self.owned()):
            async with self.reads_first.slice():
                found += self.readers.inactive_in(part, now_ms)
        self.readers.finish_sweep(found)
        return len(self.readers.inactive)
