"""LevelDB and its in-memory twin behave the same; the domain layer's rules hold on either."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.hot_state import HotPolicy
from node import keys
from node.feed_store import FeedStore
from node.store import DiskWriteError, LevelDBStore, MemoryStore, Store, StoreCorruptError, StoreLockedError
from protos import feed_pb2


@pytest.fixture(params=["leveldb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = LevelDBStore(tmp_path / "db") if request.param == "leveldb" else MemoryStore()
    yield s
    s.close()


def test_scan_respects_prefix_boundaries_and_start(store: Store) -> None:
    store.write([(k, b"v") for k in (b"ann\x00a", b"ann\x00b", b"anna\x00a", b"b", b"ann\x00c")])
    assert [k for k, _ in store.scan(b"ann\x00")] == [b"ann\x00a", b"ann\x00b", b"ann\x00c"]
    assert [k for k, _ in store.scan(b"ann\x00", reverse=True)] == [b"ann\x00c", b"ann\x00b", b"ann\x00a"]
    assert [k for k, _ in store.scan(b"ann\x00", start=b"ann\x00b")] == [b"ann\x00b", b"ann\x00c"]
    assert [k for k, _ in store.scan(b"ann\x00", start=b"ann\x00b", reverse=True)] == [b"ann\x00b", b"ann\x00a"]
    # A start outside the prefix never reaches past it.
    assert [k for k, _ in store.scan(b"ann\x00", start=b"anz", reverse=True)] == [b"ann\x00c", b"ann\x00b", b"ann\x00a"]
    assert [k for k in store.scan_keys(b"ann\x00", start=b"a")] == [b"ann\x00a", b"ann\x00b", b"ann\x00c"]
    store.write((), [b"ann\x00b"])
    assert store.get(b"ann\x00b") is None and store.get(b"ann\x00a") == b"v"


def test_snapshot_does_not_see_later_writes(store: Store) -> None:
    store.write([(b"k1", b"old")])
    snap = store.snapshot()
    store.write([(b"k1", b"new"), (b"k2", b"x")])
    assert list(snap.scan(b"k")) == [(b"k1", b"old")]
    snap.close()


def test_one_process_one_database(tmp_path: Path) -> None:
    first = LevelDBStore(tmp_path / "db")
    try:
        with pytest.raises(StoreLockedError):
            LevelDBStore(tmp_path / "db")
    finally:
        first.close()


_THREAD_POLICIES = """
import os, sys, threading
from pathlib import Path
from node.store import LevelDBStore
store = LevelDBStore(Path(sys.argv[1]))
for i in range(64):  # enough to flush a memtable or two: compaction has run
    store.write([(os.urandom(16), os.urandom(128)) for _ in range(1000)])
python = {t.native_id for t in threading.enumerate()}
for tid in os.listdir("/proc/self/task"):
    stat = open(f"/proc/self/task/{tid}/stat").read()
    name, fields = stat.split("(", 1)[1].split(")")[0], stat.rsplit(")", 1)[1].split()
    print("python" if int(tid) in python else "native", int(tid) == os.getpid(), fields[38], name)
store.close()
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_leveldb_compacts_at_idle_priority_and_the_node_thread_does_not(tmp_path: Path) -> None:
    # A fresh process: LevelDB starts its one compaction thread at the first compaction it schedules.
    out = subprocess.run(
        [sys.executable, "-c", _THREAD_POLICIES, str(tmp_path / "db")],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split("\n")
    threads = [line.split() for line in out if line]
    main = [policy for kind, is_main, policy, _ in threads if is_main == "True"]
    unnamed_native = [policy for kind, is_main, policy, name in threads if kind == "native" and name == "python"]
    assert main == [str(os.SCHED_OTHER)]
    assert unnamed_native == [str(os.SCHED_IDLE)]  # LevelDB's (gRPC names its threads; none here)


@pytest.mark.parametrize(("compression", "stored_as_written"), [("none", True), ("snappy", False)])
def test_table_blocks_are_compressed_only_when_asked(tmp_path: Path, compression: str, stored_as_written: bool) -> None:
    value = b"a post that says the same thing again and again " * 40
    store = LevelDBStore(tmp_path, "n1", compression)
    store.write([(b"key%d" % i, value) for i in range(50)])
    store.close()
    LevelDBStore(tmp_path, "n1", compression).close()  # reopening writes the log's writes into a table
    tables = b"".join(p.read_bytes() for p in tmp_path.glob("*.ldb"))
    assert tables and (value in tables) == stored_as_written


@pytest.mark.parametrize(("write_buffer_mb", "flushed"), [(1, True), (32, False)])
def test_the_memtable_takes_its_configured_size(tmp_path: Path, write_buffer_mb: int, flushed: bool) -> None:
    # 8 MiB written: a 1 MiB memtable is written out to level-0 tables as it fills; a 32 MiB one
    # holds it all, in memory and in its log.
    store = LevelDBStore(tmp_path, "n1", write_buffer_mb=write_buffer_mb)
    mib = 1 << 20
    assert 0.75 * write_buffer_mb * mib <= store.write_buffer_bytes <= 1.25 * write_buffer_mb * mib
    rng = random.Random(7)
    for start in range(0, 8192, 512):
        store.write([(b"key%06d" % i, rng.randbytes(1024)) for i in range(start, start + 512)])
    tables = list(tmp_path.glob("*.ldb"))
    store.close()
    assert len(tables) >= 4 if flushed else not tables, tables


def post(post_id: int, author: str) -> feed_pb2.Post:
    return feed_pb2.Post(id=post_id, author=author, text=f"{author} #{post_id}")


@pytest.fixture
def feed() -> FeedStore:
    return FeedStore(MemoryStore(), partitions=16, timeline_cap=5, hot_policy=HotPolicy(3, 0.5))


def ids(raws: list[bytes]) -> list[int]:
    return [feed_pb2.Post.FromString(r).id for r in raws]


def test_a_corrupt_store_refuses_to_open_and_says_what_to_do(tmp_path: Path) -> None:
    LevelDBStore(tmp_path, "n2").close()
    (tmp_path / "CURRENT").write_text("MANIFEST-999999\n")  # points at nothing: LevelDB calls it corrupt
    with pytest.raises(StoreCorruptError, match=r"node n2: its LevelDB at .* is corrupt .*node remove n2 --dead"):
        LevelDBStore(tmp_path, "n2")


def test_a_full_disk_refuses_writes_with_the_node_and_the_cause_and_keeps_reads(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        store = LevelDBStore(disk / "n2", "n2")
        store.write([(b"kept", b"1")])
        with open(disk / "filler", "wb") as filler:  # fill the disk to the last byte
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * (1 << 20))
                    filler.flush()
        with pytest.raises(DiskWriteError, match=r"node n2 cannot write to its disk \(.*No space left"):
            store.write([(b"lost", b"x" * 100_000)])
        assert store.get(b"kept") == b"1" and "No space left" in store.write_error  # reads go on
        store.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_storing_a_post_twice_changes_nothing(feed: FeedStore) -> None:
    assert feed.posts.store_post("bob", post(1, "bob"))[0] is True
    assert feed.posts.store_post("bob", post(1, "bob"))[0] is False
    assert feed.counters("bob").post_count == 1  # type: ignore[union-attr]
    assert ids(feed.posts.read_posts("bob", 10)) == [1]


def test_posts_page_newest_first_below_a_cursor(feed: FeedStore) -> None:
    for i in range(1, 8):
        feed.posts.store_post("bob", post(i, "bob"))
    assert ids(feed.posts.read_posts("bob", 3)) == [7, 6, 5]
    assert ids(feed.posts.read_posts("bob", 3, before_id=5)) == [4, 3, 2]


def test_inbox_hides_posts_of_unfollowed_authors_and_keeps_the_newest_cap(feed: FeedStore) -> None:
    feed.graph.add_following("fan", "bob")
    feed.graph.add_following("fan", "gone")
    feed.graph.remove_following("fan", "gone")
    inserted = feed.inboxes.insert([post(i, "bob") for i in range(1, 9)] + [post(99, "gone")], ["fan"])
    assert inserted == 9  # written blind; the unfollow mark hides "gone"'s
    assert ids(feed.inboxes.read("fan", 10)) == [8, 7, 6, 5, 4]  # cap 5, newest kept
    feed.inboxes.insert([post(2, "bob")], ["fan"])  # an old backfill into a full inbox
    assert ids(feed.inboxes.read("fan", 10)) == [8, 7, 6, 5, 4]
    # Paging never goes past the cap either: below the third newest, only two more.
    assert ids(feed.inboxes.read("fan", 10, before_id=6)) == [5, 4]
    assert ids(feed.inboxes.read("fan", 10, before_id=4)) == []
    # Storage is trimmed lazily: past the cap, everything goes.
    assert feed.inboxes.trim(feed.partition("fan"), "fan") == 3  # posts 3, 2, 1 ("gone"'s 99 waits, hidden)
    inbox = keys.user_prefix(feed.partition("fan"), keys.INBOX, "fan")
    entries = [keys.post_id_of(k) for k in feed.store.scan_keys(inbox) if len(k) == len(inbox) + 8]
    assert entries == [4, 5, 6, 7, 8, 99]
    assert ids(feed.inboxes.read("fan", 10)) == [8, 7, 6, 5, 4]


def test_a_repeated_entry_is_written_again_and_shows_once(feed: FeedStore) -> None:
    feed.graph.add_following("fan", "bob")
    written = feed.inboxes.insert([post(1, "bob"), post(1, "bob"), post(2, "bob")], ["fan", "fan"])
    assert written == 6  # blind: every copy is a put of the same key
    feed.inboxes.insert([post(2, "bob")], ["fan"])  # a retried batch
    assert ids(feed.inboxes.read("fan", 10)) == [2, 1]
    assert feed.batches.family_counts[b"I"] == 7  # an estimate: puts issued
    feed.batches.count_keys()  # a recount (at start, after a transfer) makes it exact again
    assert feed.batches.family_counts[b"I"] == 2


def test_a_tombstone_hides_a_late_fan_out_and_a_page_below_it(feed: FeedStore) -> None:
    feed.graph.add_following("fan", "bob")
    feed.inboxes.insert([post(1, "bob"), post(2, "bob")], ["fan"])
    feed.inboxes.remove(3, ["fan"])
    feed.inboxes.insert([post(3, "bob"), post(4, "bob")], ["fan"])  # 3 lands after its delete
    assert ids(feed.inboxes.read("fan", 10)) == [4, 2, 1]
    assert ids(feed.inboxes.read("fan", 10, before_id=4)) == [2, 1]
    feed.inboxes.remove(2, ["fan"])
    assert ids(feed.inboxes.read("fan", 1, before_id=3)) == [1]


def test_unfollow_purges_only_that_followee(feed: FeedStore) -> None:
    feed.graph.add_following("fan", "bob")
    feed.graph.add_following("fan", "carol")
    feed.inboxes.insert([post(1, "bob"), post(2, "carol")], ["fan"])
    assert feed.graph.remove_following("fan", "bob") == (True, "")
    assert ids(feed.inboxes.read("fan", 10)) == [2]
    feed.inboxes.insert([post(3, "bob")], ["fan"])  # a fan-out landing after the unfollow
    assert ids(feed.inboxes.read("fan", 10)) == [2]  # hidden by the unfollow mark
    feed.graph.add_following("fan", "bob")  # following again: new posts show
    feed.inboxes.insert([post(4, "bob")], ["fan"])
    assert ids(feed.inboxes.read("fan", 10)) == [4, 3, 2]
    assert feed.counters("fan").following_count == 2  # type: ignore[union-attr]


def test_edges_page_in_order_and_count_once(feed: FeedStore) -> None:
    for name in ["d", "a", "c", "b"]:
        feed.graph.add_follower("star", name, "star", 0)
    feed.graph.add_follower("star", "a", "star", 0)
    assert feed.graph.list_edges(keys.FOLLOWERS, "star", "", 2) == ["a", "b"]
    assert feed.graph.list_edges(keys.FOLLOWERS, "star", "b", 10) == ["c", "d"]
    assert feed.counters("star").follower_count == 4  # type: ignore[union-attr]


def test_crossing_the_threshold_starts_turning_hot_and_cooling_has_hysteresis(feed: FeedStore) -> None:
    from common.hot_state import HotState

    states = [feed.graph.add_follower("star", f"f{i}", "star", 0)[2] for i in range(3)]
    assert states == [HotState.NORMAL, HotState.NORMAL, HotState.MIGRATING]
    feed.registry.set_state("star", HotState.HOT, [HotState.MIGRATING])
    assert feed.graph.remove_follower("star", "f0")[1] is HotState.HOT  # 2 followers: above 3 x 0.5
    assert feed.graph.remove_follower("star", "f1")[1] is HotState.COOLING  # 1 follower: below


def test_a_replica_that_has_not_seen_the_follow_takes_the_post_and_a_later_unfollow_purges_it(
    feed: FeedStore,
) -> None:
    # The follow reached a quorum without this replica; the delivery arrives first.
    assert feed.inboxes.insert([post(1, "bob")], ["fan"]) == 1
    assert ids(feed.inboxes.read("fan", 10)) == [1]
    feed.graph.remove_following("fan", "bob", version=2 << 20)  # then the unfollow arrives
    feed.graph.add_following("fan", "bob", version=1 << 20)  # and the older follow, last: changes nothing
    assert feed.inboxes.read("fan", 10) == []
    feed.inboxes.insert([post(2, "bob")], ["fan"])  # late copies stay out of sight
    assert feed.inboxes.read("fan", 10) == []


def test_a_store_with_a_table_cut_short_refuses_to_open_and_says_what_to_do(tmp_path: Path) -> None:
    """LevelDB opens such a store without complaint and fails only the reads that reach the table."""
    store = LevelDBStore(tmp_path, "n2")
    store.write([(b"k%06d" % i, b"v" * 100) for i in range(20_000)])
    store._db.compact_range()  # into a table file
    store.close()
    table = next(tmp_path.glob("*.ldb"))
    with open(table, "r+b") as f:
        f.truncate(table.stat().st_size // 2)  # a disk that lost the end of a file
    with pytest.raises(StoreCorruptError, match=rf"{table.name}.*node remove n2 --dead"):
        LevelDBStore(tmp_path, "n2")
    table.unlink()  # LevelDB finds a missing one itself
    with pytest.raises(StoreCorruptError, match=r"missing files.*node remove n2 --dead"):
        LevelDBStore(tmp_path, "n2")
