"""Mute, block and readers who went away, against real processes (RF=3): a returning inactive
reader's timeline is exact while posts keep arriving, and a block and a mute hold through kill -9
of the reader's primary node and of the router. One cluster for both (inactive after 2 s)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from client import FeedClient
from common.cluster_map import initial_map
from common.errors import FailedPrecondition
from tests.integration.conftest import ClusterHandle, start_cluster, wait_settled
from tests.integration.test_cli import feedring
from tests.support import eventually

AWAY_S = 2.0


@pytest.fixture(scope="module")
def away_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    handle = start_cluster(
        tmp_path_factory.mktemp("away"),
        limits={"timeline_cap": 1000},
        fanout={"inactive_after": f"{AWAY_S:g}s"},
        replication={"repair_interval_s": 0},
    )
    yield handle
    handle.stop()


def timeline_ids(client: FeedClient, user: str) -> list[int]:
    return [p.id for p in client.iter_timeline(user, page_size=200)]


def test_a_returning_readers_first_read_is_exact_while_posts_keep_arriving(away_cluster: ClusterHandle) -> None:
    client = away_cluster.client()
    authors = [f"w{i}" for i in range(30)]
    for author in authors:
        client.follow("reader", author)
    assert timeline_ids(client, "reader") == []  # a read: the reader is active
    acked: list[tuple[float, int]] = []  # (when acknowledged, post id)
    failed: list[str] = []
    stop = threading.Event()

    def write() -> None:
        writer = away_cluster.client()
        i = 0
        while not stop.is_set():
            try:
                post = writer.post(authors[i % len(authors)], f"post {i}")
                acked.append((time.monotonic(), post.id))
            except Exception as exc:  # recorded: the set check below must not count it
                failed.append(repr(exc))
            i += 1
            time.sleep(0.03)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        # Away for longer than inactive_after: the nodes skip the reader's fan-out.
        def skipping() -> None:
            nodes = client.cluster_status().nodes
            assert sum(n.delivery.inactive_readers for n in nodes) >= 1
            assert sum(n.delivery.inbox_entries_skipped for n in nodes) > 0

        eventually(skipping, timeout_s=AWAY_S * 5)
        time.sleep(0.5)
        before_read = time.monotonic()
        first = set(timeline_ids(client, "reader"))  # rebuilt, posts still arriving
        missing = [i for t, i in acked if t < before_read and i not in first]
        assert not missing, f"{len(missing)} posts acknowledged before the first read back are not in it"
        time.sleep(1.0)  # fan-out resumed: what is posted from now on is delivered
    finally:
        stop.set()
        writer.join()
    assert not failed, failed[:3]
    wait_settled(client)
    assert timeline_ids(client, "reader") == sorted((i for _, i in acked), reverse=True)


def test_a_block_and_a_mute_hold_through_kill_9_of_the_readers_node_and_the_router(away_cluster: ClusterHandle) -> None:
    through_router = away_cluster.client(map_aware=False)
    for a, b in (("alice", "bob"), ("alice", "carol"), ("carol", "alice")):
        through_router.follow(a, b)
    assert through_router.mute("alice", "bob")
    assert through_router.block("alice", "carol")
    client = away_cluster.client()  # map-aware: it has the map, and the nodes left answer it
    client.get_user("alice")
    killed = initial_map(away_cluster.config).primary_for_key("alice")
    away_cluster.kill(killed)
    away_cluster.kill("router-0")
    try:
        hidden = [client.post("bob", "muted"), client.post("carol", "blocked")]
        own = client.post("alice", "mine")
        with pytest.raises(FailedPrecondition, match="alice has blocked you"):
            client.follow("carol", "alice")
        with pytest.raises(FailedPrecondition, match="you have blocked carol"):
            client.follow("alice", "carol")
        time.sleep(1.0)  # delivery lag
        assert own.id in timeline_ids(client, "alice")
        assert not {p.id for p in hidden} & set(timeline_ids(client, "alice"))
        assert own.id not in timeline_ids(client, "carol")
    finally:
        away_cluster.restart(killed)
        away_cluster.restart("router-0")
    wait_settled(through_router)
    assert not {p.id for p in hidden} & set(timeline_ids(through_router, "alice"))
    assert list(through_router.iter_muted("alice")) == ["bob"]
    assert list(through_router.iter_blocked("alice")) == ["carol"]
    assert list(through_router.iter_following("carol")) == []
    # The CLI, as a user would: list, unmute, and bob's posts are back (the past one too).
    assert feedring(away_cluster, "muted", "alice").stdout.split() == ["bob"]
    assert feedring(away_cluster, "unmute", "alice", "bob").stdout.strip() == "alice no longer mutes bob"
    assert hidden[0].id in timeline_ids(through_router, "alice")
    refused = feedring(away_cluster, "follow", "carol", "alice")
    assert refused.returncode == 1 and "alice has blocked you" in refused.stderr
