"""Durable fan-out on real processes: an acknowledged post (or delete, or unfollow) reaches every
follower whatever is kill -9'd after the acknowledgement, and a burst queues on disk, not in memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from client import FeedClient
from common.cluster_map import initial_map
from common.errors import Unavailable
from tests.integration.conftest import ClusterHandle, start_cluster
from tests.support import eventually

FOLLOWERS = 3000


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterHandle]:
    """A private cluster (tests kill its processes); the router runs two worker processes."""
    handle = start_cluster(tmp_path, router_workers=2)
    yield handle
    handle.stop()


def author_on(handle: ClusterHandle, node_id: str) -> str:
    cluster_map = initial_map(handle.config)
    return next(f"author-{i}" for i in range(10_000) if cluster_map.primary_for_key(f"author-{i}") == node_id)


def load_followers(client: FeedClient, author: str, count: int = FOLLOWERS) -> list[str]:
    fans = [f"{author}-fan{i:05d}" for i in range(count)]
    client.bulk_follow([(fan, author) for fan in fans])
    return fans


def timelines_missing(client: FeedClient, fans: list[str], post_id: int, present: bool = True) -> list[str]:
    """The fans whose timeline does not hold `post_id` (or, with present=False, still holds it)."""

    def wrong(fan: str) -> bool:
        try:
            ids = {p.id for p in client.timeline(fan, page_size=50).items}
        except Unavailable:  # its node is down, or restarted a moment ago
            return True
        return (post_id in ids) != present

    with ThreadPoolExecutor(16) as pool:
        return [fan for fan, bad in zip(fans, pool.map(wrong, fans), strict=True) if bad]


def assert_all_within(client: FeedClient, fans: list[str], post_id: int, seconds: float, present: bool = True) -> None:
    deadline = time.monotonic() + seconds
    while True:
        missing = timelines_missing(client, fans, post_id, present)
        if not missing:
            return
        assert time.monotonic() < deadline, f"{len(missing)} of {len(fans)} timelines wrong, e.g. {missing[:3]}"
        time.sleep(0.2)


def test_killing_every_router_process_right_after_the_ack_loses_no_delivery(cluster: ClusterHandle) -> None:
    client = cluster.client()
    fans = load_followers(client, "writer")
    post = client.post("writer", "acknowledged, then the router dies")
    cluster.kill("router-0")  # kill -9 of the router and both its workers
    cluster.restart("router-0")
    assert_all_within(client, fans, post.id, seconds=10)


def test_killing_the_authors_node_mid_delivery_then_restarting_it_loses_no_delivery(cluster: ClusterHandle) -> None:
    client = cluster.client()
    author = author_on(cluster, "n1")
    fans = load_followers(client, author)
    posts = [client.post(author, f"owed {i}") for i in range(3)]
    cluster.kill("n1")  # kill -9 while the first deliveries are under way
    readable = [f for f in fans if initial_map(cluster.config).primary_for_key(f) != "n1"]
    short = len(timelines_missing(client, readable, posts[-1].id))
    cluster.restart("n1")
    for post in posts:
        assert_all_within(client, fans, post.id, seconds=10)
    # How far delivery had got when the node died (not asserted: it depends on timing).
    print(f"timelines without the last post while n1 was down: {short} of {len(readable)} readable")


def test_a_delete_interrupted_by_a_router_kill_or_a_node_kill_completes(cluster: ClusterHandle) -> None:
    client = cluster.client()
    author = author_on(cluster, "n2")
    fans = load_followers(client, author, 1500)
    first, second = client.post(author, "deleted, then the router dies"), client.post(author, "deleted, node dies")
    assert_all_within(client, fans, second.id, seconds=10)
    client.delete_post(author, first.id)
    cluster.kill("router-0")
    cluster.restart("router-0")
    assert_all_within(client, fans, first.id, seconds=10, present=False)
    client.delete_post(author, second.id)
    cluster.kill("n2")
    cluster.restart("n2")
    assert_all_within(client, fans, second.id, seconds=10, present=False)


def test_an_unfollow_acknowledged_before_a_router_kill_is_complete(cluster: ClusterHandle) -> None:
    client = cluster.client()
    client.follow("reader", "celebrity-ish")
    posts = [client.post("celebrity-ish", f"p{i}") for i in range(5)]
    eventually(lambda: _equal(len(client.timeline("reader").items), 5), timeout_s=10)
    assert client.unfollow("reader", "celebrity-ish") is True
    cluster.kill("router-0")
    cluster.restart("router-0")
    assert client.timeline("reader").items == []
    assert "reader" not in client.followers("celebrity-ish").items
    assert client.get_user("reader").following_count == 0
    assert len(posts) == 5


def test_a_burst_of_500k_inbox_writes_queues_on_disk_reads_keep_answering_and_all_arrive(tmp_path: Path) -> None:
    # One copy: this is about the delivery queue's bounds (test_replicas.py delivers at RF=3).
    handle = start_cluster(tmp_path, hot_users={"follower_threshold": 1_000_000}, replication_factor=1)
    try:
        client = handle.client(timeout_s=30)
        authors = [f"burst{i}" for i in range(5)]
        for author in authors:
            load_followers(client, author, 5000)
        client.follow("reader", "burst0")
        inbox_before = sum(n.keys_by_family.get("inbox", 0) for n in client.cluster_status().nodes)

        slowest_read, reads, stop = [0.0], [0], threading.Event()

        def read_while_delivering() -> None:
            with FeedClient(handle.router_address, timeout_s=10) as reader:
                while not stop.is_set():
                    started = time.perf_counter()
                    reader.timeline("reader")
                    slowest_read[0] = max(slowest_read[0], time.perf_counter() - started)
                    reads[0] += 1
                    time.sleep(0.01)

        expected = 100 * 5000 + 20  # 100 posts x 5,000 followers, and the reader's 20 posts of burst0
        for i in range(100):
            client.post(authors[i % 5], f"burst post {i}")
        reading = threading.Thread(target=read_while_delivering)
        reading.start()
        status = client.cluster_status()
        owed = sum(n.delivery.records for n in status.nodes)
        peak_rss = max(n.rss_bytes for n in status.nodes)
        try:
            deadline = time.monotonic() + 120
            while True:
                status = client.cluster_status()
                peak_rss = max(peak_rss, *(n.rss_bytes for n in status.nodes))
                written = sum(n.keys_by_family.get("inbox", 0) for n in status.nodes) - inbox_before
                if written >= expected and not sum(n.delivery.records for n in status.nodes):
                    break
                assert time.monotonic() < deadline, f"only {written:,} of {expected:,} inbox writes arrived"
                time.sleep(0.5)
        finally:
            stop.set()
            reading.join()
        assert owed > 0  # the burst was queued as records, not delivered inside the post calls
        assert written == expected
        assert peak_rss < 200 * 2**20, f"a node reached {peak_rss / 2**20:.0f} MiB"
        assert reads[0] > 10 and slowest_read[0] < 2.0, f"slowest read {slowest_read[0]:.2f}s of {reads[0]}"
        print(
            f"records owed after the burst: {owed}; peak node RSS {peak_rss / 2**20:.0f} MiB; "
            f"{reads[0]} reads, slowest {slowest_read[0] * 1000:.0f} ms"
        )
    finally:
        handle.stop()


def _equal(actual: object, expected: object) -> None:
    assert actual == expected, f"{actual!r} != {expected!r}"
