"""Same-run baselines: what the machine does without feedring, so figures survive a noisy host."""

from __future__ import annotations

import tempfile
import time

import plyvel

from common.config import Storage

__all__ = ["plyvel_batched_puts_per_second", "node_table_sizes"]


def node_table_sizes() -> dict[str, int]:
    """plyvel.DB's memtable and table-file options as a node sets them (storage.write_buffer_mb,
    table_file_mb), for baselines that open LevelDB as a node does."""
    storage = Storage()
    return {"write_buffer_size": storage.write_buffer_mb << 20, "max_file_size": storage.table_file_mb << 20}


def plyvel_batched_puts_per_second(keys: int = 300_000, batch: int = 1000, compression: str | None = None) -> float:
    """Raw LevelDB write rate: 60-byte keys, 200-byte values, batches of `batch`, like inbox entries;
    blocks uncompressed by default, and memtable and tables of a node's sizes (storage.compression,
    storage.write_buffer_mb and table_file_mb)."""
    with tempfile.TemporaryDirectory() as directory:
        db = plyvel.DB(directory, create_if_missing=True, compression=compression, **node_table_sizes())
        value = b"v" * 200
        started = time.perf_counter()
        for start in range(0, keys, batch):
            with db.write_batch() as wb:
                for i in range(start, start + batch):
                    wb.put(b"%016d-inbox-consumer-%032d" % (i % 997, i), value)
        elapsed = time.perf_counter() - started
        db.close()
    return keys / elapsed
