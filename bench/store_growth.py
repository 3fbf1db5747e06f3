"""A node's store as it grows, under two LevelDB settings side by side: `python -m bench.store_growth`.

Each setting runs in its own process at the same time, so both see the same machine: a node's inbox
store (node/feed_store.py over node/store.py, LevelDB compacting at idle priority as a node's does)
takes blind inbox inserts (posts to two pages of 500 random followers among 50,000 users), eight
timeline reads of 20 per post, and the lazy trim, until it holds `--gb` on disk. Two busy writers on
two cores leave compaction only what a loaded node leaves it. Printed per half gigabyte: entries/s,
read p50 / p99, a page's write p99 and longest (LevelDB holds a write back while its compaction
catches up: on a node, that holds the event loop), level-0 tables and tables in all; written to
bench/results/<time>-store-growth.json. How storage.write_buffer_mb and table_file_mb were weighed
(docs/performance.md, 2026-12-06).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node.feed_store import FeedStore
from node.inbox_trim import InboxTrimmer
from node.reads_first import ReadsFirst
from node.store import LevelDBStore
from protos import feed_pb2

__all__ = ["grow", "main"]

USERS = 50_000
PAGE = 500


def _disk_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.iterdir() if f.is_file())


async def _grow(
    directory: Path, write_buffer_mb: int, table_file_mb: int, gb: float, check_every: int
) -> list[dict[str, float]]:
    store = LevelDBStore(directory, "growth", write_buffer_mb=write_buffer_mb, table_file_mb=table_file_mb)
    feed = FeedStore(store, partitions=1024, timeline_cap=800)
    trimmer = InboxTrimmer(feed.inboxes, ReadsFirst())
    users = [f"u{i}" for i in range(USERS)]
    rng = random.Random(1)
    text = "bench " * 8
    post_id, written, next_mark = 1 << 40, 0, 0.5
    started = last_at = time.perf_counter()
    last_written, reads, writes, rows = 0, [], [], []
    while True:
        post_id += 1
        post = feed_pb2.Post(id=post_id, author=f"a{rng.randrange(5000)}", text=text, created_at_ms=1)
        for _ in range(2):
            page = rng.sample(users, PAGE)
            at = time.perf_counter()
            written += feed.inboxes.insert([post], page)
            writes.append(time.perf_counter() - at)  # LevelDB blocks a write while it catches up
        for _ in range(8):  # readers drawn Zipf-like by rank, as the bench's
            reader = users[min(int(USERS ** rng.random()) - 1, USERS - 1)]
            at = time.perf_counter()
            feed.inboxes.read(reader, 20)
            reads.append(time.perf_counter() - at)
        if post_id % 200 == 0:
            await trimmer.trim_noted()
        if post_id % check_every:
            continue
        size_gb = _disk_bytes(directory) / 1e9
        if size_gb < next_mark and size_gb < gb:
            continue
        now = time.perf_counter()
        reads.sort()
        rows.append(
            {
                "gb": size_gb,
                "entries": float(written),
                "entries_per_s": (written - last_written) / (now - last_at),
                "read_p50_ms": reads[len(reads) // 2] * 1e3,
                "read_p99_ms": reads[int(len(reads) * 0.99)] * 1e3,
                "write_p99_ms": sorted(writes)[int(len(writes) * 0.99)] * 1e3,
                "write_max_ms": max(writes) * 1e3,
                "level0_tables": float(store._db.get_property(b"leveldb.num-files-at-level0") or b"0"),
                "tables": float(sum(1 for f in directory.iterdir() if f.suffix == ".ldb")),
                "elapsed_s": now - started,
                "at": time.time(),
            }
        )
        last_at, last_written, reads, writes, next_mark = now, written, [], [], size_gb + 0.5
        if size_gb >= gb:
            break
    store.close()
    return rows


def grow(setting: tuple[int, int], gb: float, check_every: int = 500) -> list[dict[str, float]]:
    """One setting (memtable MiB, table MiB) grown to `gb` in a temporary directory; its size is
    looked at every `check_every` posts."""
    with tempfile.TemporaryDirectory(prefix="store-growth-") as root:
        return asyncio.run(_grow(Path(root), setting[0], setting[1], gb, check_every))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store_growth",
        description="Grow a node's inbox store under two LevelDB settings at once and compare their write "
        "rates as the store grows (about 5 minutes for 2 GB).",
    )
    parser.add_argument("--gb", type=float, default=2.0, help="grow each store to this many GB on disk (2)")
    parser.add_argument(
        "--settings",
        default="4/2,32/32",
        help="two settings, memtable/table MiB each (default: LevelDB's own 4/2 against feedring's 32/32)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="where the JSON goes")
    args = parser.parse_args(argv)
    settings = [tuple(int(x) for x in s.split("/")) for s in args.settings.split(",")]
    if len(settings) != 2 or any(len(s) != 2 or min(s) < 1 for s in settings):
        parser.error("--settings takes two memtable/table pairs in MiB, e.g. 4/2,32/32")
    free_gb = shutil.disk_usage(tempfile.gettempdir()).free / 1e9
    if free_gb < 2.5 * args.gb:
        parser.error(f"needs about {2.5 * args.gb:.0f} GB free in {tempfile.gettempdir()} ({free_gb:.0f} GB)")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        runs = pool.starmap(grow, [(s, args.gb) for s in settings])
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "gb": args.gb}
    first_done = min(rows[-1]["at"] for rows in runs)
    for setting, rows in zip(settings, runs, strict=True):
        name = f"{setting[0]}/{setting[1]} MiB"
        for r in rows:  # once the other store is done this one has the machine to itself: not comparable
            r["alone"] = float(r["at"] > first_done + 1.0)
        results[name] = rows
        print(f"memtable / tables {name}:")
        for r in rows:
            print(
                f"  {r['gb']:5.2f} GB at {r['elapsed_s']:5.0f} s: {r['entries_per_s']:9,.0f} entries/s, read p50 "
                f"{r['read_p50_ms']:.3f} / p99 {r['read_p99_ms']:.3f} ms, a page's write p99 {r['write_p99_ms']:.1f} / "
                f"max {r['write_max_ms']:.0f} ms, level 0 {r['level0_tables']:.0f}, "
                f"tables {r['tables']:.0f}" + (" (alone by then)" if r["alone"] else "")
            )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-store-growth.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
