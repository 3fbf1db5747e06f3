"""Adding and removing nodes on a live cluster of real processes, with writers running throughout.

The proof is Jepsen's set check and Redis's resharding test in miniature: every write acknowledged
during the change must be readable exactly once afterwards, nothing may appear that was not
written, and every timeline must equal a model of the follows and posts.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from client import FeedClient
from common.errors import FeedringError
from feed.post_ids import created_at_ms
from protos import admin_pb2, admin_pb2_grpc
from tests.integration.conftest import ClusterHandle, start_cluster, wait_settled
from tests.support import eventually, free_ports

PARTITIONS = 512  # enough for the moved fraction to sit close to the ideal
Kind = admin_pb2.ChangeMembershipRequest


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterHandle]:
    handle = start_cluster(tmp_path, partitions=PARTITIONS)
    yield handle
    handle.stop()


def change(
    handle: ClusterHandle, kind: int, node_id: str = "", address: str = "", **kw: object
) -> list[admin_pb2.ChangeProgress]:
    with handle.client() as admin:
        stub = admin_pb2_grpc.AdminStub(admin.calls)
        request = admin_pb2.ChangeMembershipRequest(kind=kind, node_id=node_id, address=address, **kw)
        return list(stub.ChangeMembership(request, timeout=120))


def start_extra_node(handle: ClusterHandle, node_id: str) -> str:
    address = f"127.0.0.1:{free_ports(1)[0]}"
    handle.local.add_node(node_id, address)
    return address


def start_extra_feed_node(handle: ClusterHandle, node_id: str) -> tuple[str, str]:
    """A node serving the Feed API too: (its address, its feed address)."""
    address, feed = (f"127.0.0.1:{port}" for port in free_ports(2))
    handle.local.add_node(node_id, address, feed=feed)
    return address, feed


class Writer:
    """Posts and follows in a loop, recording what was acknowledged (Jepsen's set check)."""

    def __init__(self, handle: ClusterHandle, users: list[str]) -> None:
        self.client = handle.client(timeout_s=15.0)
        self.users = users
        self.acked_posts: dict[str, set[int]] = defaultdict(set)
        self.acked_follows: dict[tuple[str, str], float] = {}  # edge -> when it was acknowledged
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            author = self.users[i % len(self.users)]
            try:
                if i % 5 == 4:
                    other = self.users[(i * 7 + 3) % len(self.users)]
                    if other != author:
                        self.client.follow(author, other)
                        self.acked_follows.setdefault((author, other), time.time())
                else:
                    self.acked_posts[author].add(self.client.post(author, f"write {i}").id)
            except FeedringError as exc:
                self.failures.append(exc.message)
            i += 1


def check_nothing_lost(client: FeedClient, writer: Writer) -> None:
    wait_settled(client)  # replicas that missed writes (down, or sealed for the move) have them
    for author, acked in writer.acked_posts.items():
        stored = [p.id for p in client.iter_user_posts(author, page_size=200)]
        assert len(stored) == len(set(stored)), f"{author}: a post appears twice"
        assert acked <= set(stored), f"{author}: lost {sorted(acked - set(stored))[:5]}"
    following: dict[str, dict[str, float]] = defaultdict(dict)
    for (follower, followee), since in writer.acked_follows.items():
        following[follower][followee] = since
    for follower, followees in following.items():
        assert set(followees) <= set(client.iter_following(follower, page_size=200)), f"{follower} lost a follow"
    posts_of = {u: {p.id for p in client.iter_user_posts(u, page_size=200)} for u in writer.users}

    def timelines_match() -> None:
        for follower, followees in following.items():
            got = [p for p in client.iter_timeline(follower, page_size=200)]
            ids = [p.id for p in got]
            assert ids == sorted(set(ids), reverse=True), f"timeline of {follower}: repeats or out of order"
            # Nothing that was not written by someone followed (or the follower)...
            assert all(p.id in posts_of.get(p.author, set()) and p.author in {*followees, follower} for p in got)
            # ...and every acknowledged post made after the follow is there.
            for followee, since in followees.items():
                later = {i for i in writer.acked_posts.get(followee, ()) if created_at_ms(i) > since * 1000 + 5}
                assert later <= set(ids), f"timeline of {follower} misses posts of {followee}"

    eventually(timelines_match, timeout_s=10.0, interval_s=0.25)


def test_add_then_remove_a_node_while_writing_loses_nothing(cluster: ClusterHandle) -> None:
    # The writer's client is map-aware: it writes to the nodes themselves and follows the moves.
    client = cluster.client()
    users = [f"user{i}-{uuid.uuid4().hex[:4]}" for i in range(40)]
    address, feed = start_extra_feed_node(cluster, "n4")

    plan = change(cluster, Kind.ADD, "n4", address, dry_run=True)
    assert [p.phase for p in plan] == ["PLANNED"]
    assert client.cluster_status().epoch == 1  # a dry run changes nothing
    # Each of 4 nodes holds replication_factor / 4 of the partitions: n4 gets a replica of those.
    ideal = PARTITIONS * cluster.config.replication_factor / 4
    assert abs(plan[0].partitions_moving - ideal) <= 0.15 * ideal
    assert {m.destination for m in plan[0].moves} == {"n4"}
    reader = f"reader-{uuid.uuid4().hex[:4]}"  # follows every writer: sees deliveries made during the moves
    client.bulk_follow([(reader, u) for u in users])

    with Writer(cluster, users) as writer:
        time.sleep(0.5)
        progress = change(cluster, Kind.ADD, "n4", address, feed_address=feed)
        time.sleep(0.5)
    assert progress[-1].phase == "DONE", progress[-1].message
    assert writer.client.routed is not None
    writer.client.routed.refresh()
    assert feed in writer.client.routed.routing.all_addresses()  # type: ignore[union-attr]
    assert {"COPYING", "DONE"} <= {p.phase for p in progress}
    assert progress[-1].partitions_moving == plan[0].partitions_moving
    assert not writer.failures, writer.failures[:3]
    status = client.cluster_status()
    assert status.epoch == 3 and sorted(n.id for n in status.nodes) == ["n1", "n2", "n3", "n4"]
    n4 = next(n for n in status.nodes if n.id == "n4")
    assert len(client.cluster_map().owned_by("n4")) == plan[0].partitions_moving
    assert n4.keys_by_family.get("posts", 0) > 0
    check_nothing_lost(client, writer)

    n2_partitions = len(client.cluster_map().owned_by("n2"))
    with Writer(cluster, users) as writer2:
        time.sleep(0.5)
        progress = change(cluster, Kind.REMOVE, "n2")
        time.sleep(0.5)
    assert progress[-1].phase == "DONE", progress[-1].message
    assert progress[-1].partitions_moving == n2_partitions  # only the partitions n2 holds move
    assert not writer2.failures, writer2.failures[:3]
    # Deliveries whose records were written during the move are driven by their new replicas at once,
    # not left to the 10 s check of old records (#26): the newest posts show within seconds.
    stopped = time.monotonic()
    newest = set(sorted(i for acked in writer2.acked_posts.values() for i in acked)[-500:])

    def newest_delivered() -> None:
        shown = {p.id for p in itertools.islice(client.iter_timeline(reader, page_size=200), 800)}
        assert not newest - shown, f"{len(newest - shown)} of the newest {len(newest)} posts not in the timeline"

    eventually(newest_delivered, timeout_s=7.0, interval_s=0.1)
    print(f"\nnewest {len(newest)} posts in a follower's timeline {time.monotonic() - stopped:.1f} s after the move")
    status = client.cluster_status()
    assert sorted(n.id for n in status.nodes) == ["n1", "n3", "n4"]
    assert status.epoch == 5
    for author, acked in writer2.acked_posts.items():
        writer.acked_posts[author] |= acked
    for edge, since in writer2.acked_follows.items():
        writer.acked_follows.setdefault(edge, since)
    check_nothing_lost(client, writer)
    # n2 dropped its copy and can be stopped without losing anything.
    cluster.kill("n2")
    check_nothing_lost(client, writer)


def test_one_change_at_a_time_and_abort_rolls_back(cluster: ClusterHandle) -> None:
    client = cluster.client()
    for i in range(300):
        client.post(f"seed{i % 30}", f"seed {i}")
    address = start_extra_node(cluster, "n4")
    other = start_extra_node(cluster, "n5")
    results: list[list[admin_pb2.ChangeProgress]] = []
    slow = threading.Thread(
        target=lambda: results.append(change(cluster, Kind.ADD, "n4", address, max_keys_per_second=10))
    )
    slow.start()
    eventually(lambda: _equal(client.cluster_status().change, f"add n4 {address}"), timeout_s=5.0)
    with pytest.raises(grpc.RpcError) as refused:
        change(cluster, Kind.ADD, "n5", other)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "one change at a time" in (refused.value.details() or "")

    aborted = change(cluster, Kind.ABORT)
    slow.join(timeout=30)
    assert aborted[-1].phase == "ABORTED"
    status = client.cluster_status()
    assert status.change == "" and sorted(n.id for n in status.nodes) == ["n1", "n2", "n3"]
    assert sum(len(list(client.iter_user_posts(f"seed{i}"))) for i in range(30)) == 300
    client.post("seed0", "still writable after the abort")


def test_killing_the_source_mid_move_then_resuming_loses_nothing(cluster: ClusterHandle) -> None:
    client = cluster.client()
    users = [f"k{i}" for i in range(30)]
    for i in range(1500):
        client.post(users[i % 30], f"seed {i}")
    address = start_extra_node(cluster, "n4")
    outcome: list[list[admin_pb2.ChangeProgress]] = []
    with Writer(cluster, users) as writer:
        mover = threading.Thread(
            target=lambda: outcome.append(change(cluster, Kind.ADD, "n4", address, max_keys_per_second=20))
        )
        mover.start()
        eventually(lambda: _check((client.cluster_status().change_progress.keys_moved or 0) > 0), timeout_s=10)
        cluster.kill("n1")  # a source, mid-stream
        mover.join(timeout=60)
        assert outcome and outcome[0][-1].phase == "FAILED", outcome
        assert "resume" in outcome[0][-1].message
        cluster.restart("n1")
        progress = change(cluster, Kind.RESUME)
        time.sleep(0.5)
    assert progress[-1].phase == "DONE", progress[-1].message
    # Writes to n1's partitions failed while it was down; every acknowledged one survived.
    check_nothing_lost(client, writer)
    assert sorted(n.id for n in client.cluster_status().nodes) == ["n1", "n2", "n3", "n4"]


def test_bad_changes_are_refused_before_anything_moves(cluster: ClusterHandle) -> None:
    client = cluster.client()
    unreachable = f"127.0.0.1:{free_ports(1)[0]}"
    cases = [
        ((Kind.ADD, "n9", unreachable), grpc.StatusCode.UNAVAILABLE, "not reachable"),
        ((Kind.REMOVE, "n42", ""), grpc.StatusCode.NOT_FOUND, "not a member"),
        ((Kind.ADD, "n1", "127.0.0.1:1"), grpc.StatusCode.FAILED_PRECONDITION, "already a member"),
        ((Kind.RESUME, "", ""), grpc.StatusCode.FAILED_PRECONDITION, "no membership change"),
    ]
    for (kind, node_id, address), code, message in cases:
        with pytest.raises(grpc.RpcError) as err:
            change(cluster, kind, node_id, address)
        assert err.value.code() == code and message in (err.value.details() or ""), err.value.details()
    assert client.cluster_status().epoch == 1


def test_the_last_node_cannot_be_removed(tmp_path: Path) -> None:
    handle = start_cluster(tmp_path, nodes=1)
    try:
        with pytest.raises(grpc.RpcError) as err:
            change(handle, Kind.REMOVE, "n1")
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "last node" in (err.value.details() or "")
    finally:
        handle.stop()


def _check(condition: bool) -> None:
    assert condition


def _equal(actual: object, expected: object) -> None:
    assert actual == expected


@pytest.mark.parametrize("victim", ["destination", "admin command"])
def test_killing_the_destination_or_the_admin_command_mid_move_loses_nothing(
    cluster: ClusterHandle, victim: str
) -> None:
    import os
    import signal
    import subprocess
    import sys

    client = cluster.client()
    users = [f"d{i}" for i in range(30)]
    for i in range(900):
        client.post(users[i % 30], f"seed {i}")
    address = start_extra_node(cluster, "n4")
    command = [sys.executable, "-m", "client.cli", "--config", str(cluster.path), "node"]
    with Writer(cluster, users) as writer:
        cli = subprocess.Popen(
            [*command, "add", "n4", address, "--max-rate", "100"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        eventually(lambda: _check(client.cluster_status().change_progress.keys_moved > 0), timeout_s=15)
        if victim == "destination":
            cluster.kill("n4")
            eventually(lambda: _equal(client.cluster_status().change_progress.phase, ""), timeout_s=15)
            cli.wait(timeout=30)
            assert cli.returncode == 1  # the CLI reports the failure
            cluster.restart("n4")
        else:
            os.kill(cli.pid, signal.SIGKILL)
            cli.wait()
        resumed = subprocess.run([*command, "resume"], capture_output=True, text=True, timeout=120)
        time.sleep(0.3)
    assert resumed.returncode == 0, resumed.stderr
    assert "moved" in resumed.stderr
    status = client.cluster_status()
    assert status.change == "" and sorted(n.id for n in status.nodes) == ["n1", "n2", "n3", "n4"]
    check_nothing_lost(client, writer)
