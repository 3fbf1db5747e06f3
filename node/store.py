"""The node's key-value store: a small interface, LevelDB behind it, and an in-memory twin.

The domain layer (``feed_store``) only needs point reads, atomic batches and ordered range scans,
so that is all ``Store`` offers. ``MemoryStore`` exists for fast unit tests of the domain layer.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

import plyvel

from common.config import Storage
from common.errors import Unavailable
from node.idle_compaction import open_with_idle_compaction

__all__ = [
    "Store",
    "Snapshot",
    "LevelDBStore",
    "MemoryStore",
    "StoreLockedError",
    "StoreCorruptError",
    "DiskWriteError",
]


class StoreLockedError(RuntimeError):
    """Another process has the database open (LevelDB allows one)."""


class Store(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def write(self, puts: Iterable[tuple[bytes, bytes]] = (), deletes: Iterable[bytes] = ()) -> None:
        """Applies every put and delete atomically."""

    def scan(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Keys under `prefix` in byte order (or reverse). `start` is inclusive: the first key
        yielded is >= start (reverse: <= start)."""

    def scan_keys(self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False) -> Iterator[bytes]:
        """As scan, keys only (LevelDB then copies no values)."""

    def snapshot(self) -> Snapshot:
        """A consistent read-only view as of now (for streaming a partition while it is written)."""

    def close(self) -> None: ...


class Snapshot(Protocol):
    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...

    def close(self) -> None: ...


class LevelDBSnapshot:
    def __init__(self, snap: plyvel.Snapshot) -> None:
        self._snap = snap

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        with self._snap.iterator(prefix=prefix) as it:
            yield from it

    def close(self) -> None:
        # Releasing a snapshot promptly matters: it pins old data in LevelDB.
        self._snap.close()


class StoreCorruptError(RuntimeError):
    """LevelDB found its files corrupt at open: the node must not serve from them."""


class DiskWriteError(Unavailable):
    """The disk refused a write (full, read-only, failing): the node keeps serving reads, and
    writes go to the other replicas (a coordinator keeps a hint for this one)."""


class LevelDBStore:
    def __init__(
        self,
        path: Path,
        name: str = "",
        compression: str = "none",
        write_buffer_mb: int = Storage.write_buffer_mb,
        table_file_mb: int = Storage.table_file_mb,
    ) -> None:
        self.path = path
        # Within +-25% of the setting, drawn at each open (Riak's way): the three replicas of the
        # shipped cluster take the same writes, and equal memtables would fill and flush together.
        self.write_buffer_bytes = int(write_buffer_mb * (1 << 20) * random.uniform(0.75, 1.25))
        self.table_file_bytes = table_file_mb << 20
        # LevelDB marks each block with how it was written: a store reopened with another setting
        # reads its old blocks as they are and writes new ones the new way.
        self.compression = None if compression == "none" else compression
        self.name = name or str(path)  # the node id, in messages
        self.write_error = ""  # the disk's last refusal (LevelDB refuses every write after one)
        path.mkdir(parents=True, exist_ok=True)
        self._open()

    def _open(self) -> None:
        path = self.path
        try:
            self._db = open_with_idle_compaction(
                str(path),
                create_if_missing=True,
                lru_cache_size=32 << 20,
                # Most reads behind an inbox insert miss (no tombstone, no entry yet): a bloom filter
                # answers those without reading a block (measured: ~15% less per entry at 2M keys).
                bloom_filter_bits=10,
                # Uncompressed blocks (storage.compression, common/config.py): snappy took most of
                # compaction's CPU, and compaction most of a loaded node's (docs/performance.md).
                compression=self.compression,
                # storage.write_buffer_mb and table_file_mb (common/config.py): LevelDB's own sizes
                # unless the cluster file says otherwise.
                write_buffer_size=self.write_buffer_bytes,
                max_file_size=self.table_file_bytes,
            )
        except plyvel.CorruptionError as exc:
            raise self._corrupt(_text(exc)) from exc
        except plyvel.IOError as exc:
            raise StoreLockedError(f"cannot open LevelDB at {path}: {_text(exc)}") from exc
        damaged = self._damaged_tables()
        if damaged:
            self._db.close()
            raise self._corrupt(f"table files missing or cut short: {', '.join(damaged[:5])}")
        # plyvel's own get, bound: the call every inbox insert makes three times. (Never `key in db`:
        # plyvel 1.5.1 answers False after scanning everything.)
        self.get: Callable[[bytes], bytes | None] = self._db.get

    def _corrupt(self, what: str) -> StoreCorruptError:
        return StoreCorruptError(
            f"node {self.name}: its LevelDB at {self.path} is corrupt ({what}), so it will not start. "
            f"Its data is on its replicas: remove it with `feedring node remove {self.name} --dead` "
            "(the other replicas rebuild its copies), then add a node with an empty data_dir"
        )

    def _damaged_tables(self) -> list[str]:
        """Table files whose size on disk is not the size LevelDB recorded for them. LevelDB opens a
        store with a truncated table without complaint (a missing one it notices) and fails only the
        reads that reach it, so every table is looked at once, at open (a stat each)."""
        damaged = []
        for line in (self._db.get_property(b"leveldb.sstables") or b"").decode().splitlines():
            number, colon, rest = line.strip().partition(":")
            if not colon or not number.isdigit():
                continue  # a "--- level N ---" line
            size = int(rest.split("[", 1)[0])
            names = [self.path / f"{int(number):06d}{ext}" for ext in (".ldb", ".sst")]
            found = next((p for p in names if p.exists()), None)
            if found is None or found.stat().st_size != size:
                damaged.append(names[0].name)
        return damaged

    def write(self, puts: Iterable[tuple[bytes, bytes]] = (), deletes: Iterable[bytes] = ()) -> None:
        if self.write_error:
            # Once one write failed, none is tried until the store is reopened: LevelDB may take a
            # later one after a torn log record, and its recovery drops the rest of that log block,
            # so a write acknowledged now could be gone after a reopen or a restart.
            raise self._refused()
        # transaction=True: a batch that raises midway writes nothing.
        try:
            with self._db.write_batch(transaction=True) as batch:
                put, delete = batch.put, batch.delete
                for key, value in puts:
                    put(key, value)
                for key in deletes:
                    delete(key)
        except plyvel.IOError as exc:
            self.write_error = _text(exc)
            raise self._refused() from exc

    def _refused(self) -> DiskWriteError:
        return DiskWriteError(
            f"node {self.name} cannot write to its disk ({self.write_error}): it keeps serving reads, "
            "and writes go to the other replicas. Free space (or fix the disk): within seconds the "
            "node takes writes again and catches up on what it missed by itself"
        )

    def scan(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        # LevelDB's own iterator, bounded to the prefix: no Python step per key (a timeline read
        # walks a few of these; closed when dropped, as a generator holding it would be).
        it: Iterator[tuple[bytes, bytes]] = self._iterator(prefix, start, reverse, True)
        return it

    def scan_keys(self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False) -> Iterator[bytes]:
        it: Iterator[bytes] = self._iterator(prefix, start, reverse, False)
        return it

    def _iterator(self, prefix: bytes, start: bytes | None, reverse: bool, values: bool) -> plyvel.Iterator:
        """Over the keys starting with `prefix` only, from `start` (inclusive) when given."""
        if start is None:
            return self._db.iterator(prefix=prefix, reverse=reverse, include_value=values)
        end = _prefix_end(prefix)
        if reverse:
            return self._db.iterator(start=prefix, stop=min(start + b"\x00", end), reverse=True, include_value=values)
        return self._db.iterator(start=max(start, prefix), stop=end, include_value=values)

    def snapshot(self) -> LevelDBSnapshot:
        return LevelDBSnapshot(self._db.snapshot())

    def cache_bytes(self) -> int:
        """The memory LevelDB reports holding: its block cache (up to lru_cache_size) and memtables.
        Not counted by LevelDB: each open table's index and bloom filter (10 bits a key), which
        grow with the data (bench/soak.py allows for them)."""
        raw = self._db.get_property(b"leveldb.approximate-memory-usage")
        return int(raw) if raw else 0

    def close(self) -> None:
        self._db.close()

    def reopen(self) -> None:
        """Closes and opens the database again: LevelDB refuses every write after one failed (its
        background error sticks), so a disk with room again is only usable after this. Scans open
        at this moment fail (their loops retry); the caller rebinds anything holding `get`, and
        counts keys again (a write LevelDB took after the failure may be dropped by its recovery)."""
        self._db.close()
        self._open()
        self.write_error = ""


class MemoryStore:
    """A sorted in-memory store with LevelDB's semantics; used only for unit tests."""

    def __init__(self) -> None:
        self._keys: list[bytes] = []
        self._values: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self._values.get(key)

    def write(self, puts: Iterable[tuple[bytes, bytes]] = (), deletes: Iterable[bytes] = ()) -> None:
        for key, value in list(puts):
            if key not in self._values:
                bisect.insort(self._keys, key)
            self._values[key] = value
        for key in list(deletes):
            if self._values.pop(key, None) is not None:
                del self._keys[bisect.bisect_left(self._keys, key)]

    def scan(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        lo = bisect.bisect_left(self._keys, prefix)
        hi = bisect.bisect_left(self._keys, _prefix_end(prefix)) if prefix else len(self._keys)
        if start is not None:
            if reverse:
                hi = min(hi, bisect.bisect_right(self._keys, start))
            else:
                lo = max(lo, bisect.bisect_left(self._keys, start))
        keys = self._keys[lo:hi]
        for key in reversed(keys) if reverse else keys:
            if key in self._values:
                yield key, self._values[key]

    def scan_keys(self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False) -> Iterator[bytes]:
        return (key for key, _ in self.scan(prefix, start=start, reverse=reverse))

    def snapshot(self) -> MemorySnapshot:
        twin = MemoryStore()
        twin._keys = list(self._keys)
        twin._values = dict(self._values)
        return MemorySnapshot(twin)

    def close(self) -> None:
        pass


class MemorySnapshot:
    def __init__(self, frozen: MemoryStore) -> None:
        self._frozen = frozen

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._frozen.scan(prefix)

    def close(self) -> None:
        pass


def _text(exc: Exception) -> str:
    """plyvel's message (bytes from LevelDB) as text."""
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def _prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with `prefix`."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return b"\xff" * (len(prefix) + 1)
    return trimmed[:-1] + bytes([trimmed[-1] + 1])
