"""Replicas against real processes: a Jepsen-style set check through kill -9 and SIGSTOP, a replica
finishing the deliveries of an author's node that stays down, and repair making replicas equal.

Every operation is recorded as acknowledged (OK), failed (a definite refusal) or unknown (no answer
in time, or UNAVAILABLE: it may have been applied). At the end nothing acknowledged may be missing,
nothing that was never attempted may appear, and after repair every replica's digests are equal.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from client import FeedClient
from common.cluster_map import initial_map
from common.errors import DeadlineExceeded, FeedringError, Unavailable
from protos import admin_pb2, admin_pb2_grpc
from tests.integration.conftest import ClusterHandle, start_cluster, wait_settled
from tests.support import eventually, node_digests

AUTHORS = [f"author{i}" for i in range(8)]
READERS = [f"reader{i}" for i in range(16)]


@dataclass
class Op:
    kind: str  # "post" or "follow"
    args: tuple[str, str]  # (author, text) or (reader, author)
    started: float
    ended: float = 0.0
    outcome: str = ""  # "ok", "failed", "unknown"
    post_id: int = 0


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    reads: list[tuple[float, str, float]] = field(default_factory=list)  # (when, outcome, seconds)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)


def _outcome(call: Callable[..., object], *args: object) -> tuple[str, object]:
    try:
        return "ok", call(*args)
    except (Unavailable, DeadlineExceeded) as exc:
        _ERRORS.append(exc.message)
        return "unknown", None
    except FeedringError as exc:
        _ERRORS.append(exc.message)
        return "failed", None


_ERRORS: list[str] = []  # what failed calls said, for the assertion message


def _writer(client: FeedClient, history: History, seed: int, stop: threading.Event) -> None:
    rng = random.Random(seed)
    n = 0
    while not stop.is_set():
        n += 1
        if rng.random() < 0.75:
            author = rng.choice(AUTHORS)
            op = Op("post", (author, f"w{seed}-{n}"), time.monotonic())
            op.outcome, post = _outcome(client.post, author, op.args[1])
            op.post_id = post.id if post is not None else 0  # type: ignore[attr-defined]
        else:
            reader, author = rng.choice(READERS), rng.choice(AUTHORS)
            op = Op("follow", (reader, author), time.monotonic())
            op.outcome, _ = _outcome(client.follow, reader, author)
        op.ended = time.monotonic()
        history.record(op)
        time.sleep(0.02)


def _reader(client: FeedClient, history: History, stop: threading.Event) -> None:
    rng = random.Random(99)
    while not stop.is_set():
        started = time.monotonic()
        outcome, _ = _outcome(client.timeline, rng.choice(READERS), 50)
        with history.lock:
            history.reads.append((started, outcome, time.monotonic() - started))
        time.sleep(0.01)


def _failed_fraction(history: History, start: float, end: float) -> tuple[float, int, float]:
    """Of the operations started in the window: the share that failed, how many, and their p99 (s)."""
    window = [o for o in history.ops if start <= o.started < end]
    reads = [r for r in history.reads if start <= r[0] < end]
    bad = sum(o.outcome != "ok" for o in window) + sum(r[1] != "ok" for r in reads)
    total = len(window) + len(reads)
    latencies = sorted([o.ended - o.started for o in window] + [r[2] for r in reads])
    p99 = latencies[min(int(0.99 * len(latencies)), len(latencies) - 1)] if latencies else 0.0
    return (bad / total if total else 0.0), total, p99


def assert_caught_up(log_text: str, node_id: str) -> None:
    assert f"caught up on writes missed while down node={node_id}" in log_text, f"{node_id} has not caught up"


@pytest.fixture
def replicated(tmp_path: Path) -> ClusterHandle:
    handle = start_cluster(
        tmp_path,
        partitions=64,
        replication_factor=3,
        limits={"timeline_cap": 5000},
        replication={"repair_interval_s": 0},
    )
    yield handle  # type: ignore[misc]
    for node in handle.config.nodes:  # never leave a stopped process behind
        pid = handle.local.pid(node.id)
        if pid:
            os.kill(pid, signal.SIGCONT)
    handle.stop()


def test_kill_and_hang_one_node_under_load_lose_nothing_acknowledged(replicated: ClusterHandle) -> None:
    handle = replicated
    setup = handle.client()
    for reader in READERS[:4]:
        setup.follow(reader, AUTHORS[0])
    history = History()
    stop = threading.Event()
    clients = [handle.client(timeout_s=10.0) for _ in range(4)]
    threads = [threading.Thread(target=_writer, args=(clients[i], history, i, stop)) for i in range(3)]
    threads.append(threading.Thread(target=_reader, args=(clients[3], history, stop)))
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        # kill -9 one node, keep going 10 s, restart it.
        killed = "n2"
        kill_start = time.monotonic()
        handle.kill(killed)
        time.sleep(10)
        kill_end = time.monotonic()
        logged_before = len(handle.local.log_path(killed).read_text())
        handle.restart(killed)
        time.sleep(3)
        # SIGSTOP a different node for 10 s, then SIGCONT it.
        hung = "n3"
        pid = handle.local.pid(hung)
        assert pid
        stop_start = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(10)
        finally:
            os.kill(pid, signal.SIGCONT)
        stop_end = time.monotonic()
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)

    killed_fraction, killed_ops, killed_p99 = _failed_fraction(history, kill_start, kill_end)
    hung_fraction, hung_ops, hung_p99 = _failed_fraction(history, stop_start, stop_end)
    print(
        f"\nkill -9 {killed} 10 s: {killed_fraction:.1%} of {killed_ops} operations failed, p99 {killed_p99:.2f} s; "
        f"SIGSTOP {hung} 10 s: {hung_fraction:.1%} of {hung_ops} failed, p99 {hung_p99:.2f} s"
    )
    # The clients are map-aware: they call the nodes themselves, and a node that is killed or hangs
    # costs them a fail-over to another replica, never a failed call.
    assert killed_fraction == 0 and hung_fraction == 0, _ERRORS[:5]

    # The restarted node caught up from its peers' hints, as it does after a short absence, not by
    # giving up on them and repairing every partition before serving reads (node/hint_drain.py).
    since_restart = lambda: handle.local.log_path(killed).read_text()[logged_before:]  # noqa: E731
    eventually(lambda: assert_caught_up(since_restart(), killed), timeout_s=30)
    assert "repairing from the peers that answer before serving reads" not in since_restart()

    client = handle.client(timeout_s=30.0)
    wait_settled(client)
    progress = list(client.repair())
    assert progress[-1].done and not progress[-1].unreachable
    wait_settled(client)

    posts = [o for o in history.ops if o.kind == "post"]
    attempted = {o.args[1] for o in posts}
    acknowledged = {o.args[1]: o for o in posts if o.outcome == "ok"}
    readable: dict[str, set[str]] = {a: {p.text for p in client.iter_user_posts(a, page_size=200)} for a in AUTHORS}
    lost = {text for text, o in acknowledged.items() if text not in readable[o.args[0]]}
    assert not lost, f"acknowledged posts lost: {sorted(lost)[:10]}"
    unwritten = set().union(*readable.values()) - attempted
    assert not unwritten, f"posts nobody wrote: {sorted(unwritten)[:10]}"

    # Every acknowledged post is in the timeline of every reader whose acknowledged follow of its
    # author ended before the post was sent.
    follows = [o for o in history.ops if o.kind == "follow" and o.outcome == "ok"]
    timelines = {r: {p.text for p in client.iter_timeline(r, page_size=200)} for r in READERS}
    missing = [
        (f.args[0], text)
        for f in follows
        for text, p in acknowledged.items()
        if p.args[0] == f.args[1] and p.started > f.ended and text not in timelines[f.args[0]]
    ]
    assert not missing, f"{len(missing)} acknowledged posts missing from followers' timelines: {missing[:5]}"
    assert len(acknowledged) > 200 and len(follows) > 50  # the load really ran

    # Zero failures for data with a live replica: there always was one.
    assert killed_fraction == 0.0 and hung_fraction == 0.0

    # After repair, every replica of every partition holds the same data.
    digests = {
        n.id: node_digests(n.address, handle.config.partitions, handle.local.secret) for n in handle.config.nodes
    }
    table = initial_map(handle.config)
    differing = [
        p for p in range(handle.config.partitions) if len({tuple(digests[n][p]) for n in table.replicas(p)}) != 1
    ]
    assert not differing, f"replicas differ after repair in partitions {differing}"


def test_a_replica_finishes_the_deliveries_of_an_authors_node_that_stays_down(replicated: ClusterHandle) -> None:
    handle = replicated
    client = handle.client(timeout_s=10.0)
    author = "celebrity-ish"
    fans = [f"fan{i:04d}" for i in range(3000)]
    client.bulk_follow([(fan, author) for fan in fans])
    primary = initial_map(handle.config).primary_for_key(author)
    post = client.post(author, "the show goes on")
    handle.kill(primary)  # right after the acknowledgement, before it could deliver everything

    def delivered() -> int:
        return sum(1 for fan in fans if [p.id for p in client.timeline(fan).items][:1] == [post.id])

    eventually(lambda: _equal(delivered(), len(fans)), timeout_s=90.0, interval_s=1.0)
    status = {n.id: n for n in client.cluster_status().nodes}
    assert not status[primary].healthy  # it never came back: the others did the work
    assert sum(n.delivery.inbox_writes for n in status.values() if n.healthy) >= len(fans)


def test_a_callers_acknowledged_writes_are_read_back_through_every_entry_after_two_failures(
    replicated: ClusterHandle,
) -> None:
    """Read your writes, with two faults: the second replica of the author's partition is down while
    the author posts, deletes and follows (the first and third take the writes; the first keeps the
    hints), then the first is killed and the second restarted. The hints cannot come; the restarted
    node keeps its reads away until it has repaired from the third, so every read right after, through
    a router and through each node, shows exactly what was acknowledged."""
    handle = replicated
    cluster_map = initial_map(handle.config)
    author = next(
        name
        for name in (f"ryw{i}" for i in range(1000))
        if cluster_map.replicas(cluster_map.partition(name)) == ("n1", "n2", "n3")
    )
    client = handle.client(timeout_s=10.0, map_aware=False)  # through the router
    gone = client.post(author, "deleted while n2 was down")
    handle.kill("n2")
    kept = client.post(author, "posted while n2 was down")
    client.delete_post(author, gone.id)
    client.follow(author, "ryw-friend")
    handle.kill("n1")  # the hints for n2 die with it (until it returns)
    handle.restart("n2")
    entries = [client] + [FeedClient(n.feed, timeout_s=10.0, map_aware=False) for n in handle.config.nodes[1:]]
    deadline = time.monotonic() + 3.0
    reads = dict.fromkeys(range(len(entries)), 0)
    while time.monotonic() < deadline:
        for i, entry in enumerate(entries):
            try:
                posts = [p.id for p in entry.user_posts(author).items]
            except Unavailable as exc:  # the restarted node's Feed port opens a moment after its Storage port
                assert i == 1 and "cannot reach" in exc.message, exc.message
                continue
            assert posts == [kept.id], entry.address
            assert [p.id for p in entry.timeline(author).items] == [kept.id], entry.address
            assert list(entry.iter_following(author)) == ["ryw-friend"], entry.address
            reads[i] += 3
    assert all(n >= 9 for n in reads.values()), reads


def _equal(got: object, want: object) -> None:
    assert got == want, f"{got} != {want}"


def test_a_node_gone_for_good_is_removed_and_its_replicas_rebuilt_from_the_others(tmp_path: Path) -> None:
    handle = start_cluster(tmp_path, nodes=4, partitions=64, replication_factor=3)
    try:
        client = handle.client(timeout_s=10.0)
        authors = [f"a{i}" for i in range(12)]
        for author in authors:
            client.follow("fan", author)
        acked = {client.post(a, f"before {a}").id for a in authors}
        handle.kill("n4")  # its disk is gone: it will never come back
        acked |= {client.post(a, f"while dead {a}").id for a in authors}
        with handle.client() as admin:
            request = admin_pb2.ChangeMembershipRequest(
                kind=admin_pb2.ChangeMembershipRequest.REMOVE, node_id="n4", dead=True
            )
            progress = list(admin_pb2_grpc.AdminStub(admin.calls).ChangeMembership(request, timeout=120))
        assert progress[-1].phase == "DONE", progress[-1].message
        assert progress[-1].partitions_moving == len(initial_map(handle.config).owned_by("n4"))
        cluster_map = client.cluster_map()
        assert sorted(m.id for m in cluster_map.members) == ["n1", "n2", "n3"]
        assert all(len(r) == 3 for r in cluster_map.table)  # every partition has three replicas again
        wait_settled(client)
        readable = {p.id for a in authors for p in client.iter_user_posts(a)}
        assert acked <= readable
        assert {p.id for p in client.iter_timeline("fan", page_size=200)} == acked
        assert list(client.repair())[-1].done
        digests = {n: node_digests(handle.config.node(n).address, 64, handle.local.secret) for n in ("n1", "n2", "n3")}
        assert all(len({tuple(digests[n][p]) for n in ("n1", "n2", "n3")}) == 1 for p in range(64))
    finally:
        handle.stop()


def test_tombstones_are_collected_once_every_replica_has_them_and_what_they_deleted_stays_deleted(
    tmp_path: Path,
) -> None:
    """gc_grace of seconds: n3 misses a delete and an unfollow (killed, its hints expired), a repair
    brings them, the next collects every tombstone on every replica, and neither comes back."""
    handle = start_cluster(
        tmp_path,
        partitions=16,
        replication_factor=3,
        replication={"repair_interval_s": 0, "gc_grace": "6s", "max_hint_age": "1s"},
    )
    try:
        client = handle.client(timeout_s=10.0)
        client.follow("ann", "bob")
        client.follow("cat", "bob")
        doomed, kept = client.post("bob", "doomed"), client.post("bob", "kept")
        wait_settled(client)
        handle.kill("n3")  # (a stopped node would still take the writes queued in its socket)
        client.delete_post("bob", doomed.id)
        assert client.unfollow("cat", "bob")
        deleted_at = time.monotonic()
        time.sleep(2.5)  # n3's hints expire: only a repair can tell it
        handle.restart("n3")

        def counts(family: str) -> dict[str, int]:
            return {n.id: n.keys_by_family.get(family, 0) for n in client.cluster_status().nodes}

        eventually(lambda: assert_all_healthy(client), timeout_s=30)
        assert counts("post_tombstones") == {"n1": 1, "n2": 1, "n3": 0}

        def repaired() -> None:  # every replica reached (the detectors may still doubt n3 a moment)
            assert list(client.repair())[-1].done
            assert counts("post_tombstones") == {"n1": 1, "n2": 1, "n3": 1}

        eventually(repaired, timeout_s=30)
        time.sleep(max(0.0, deleted_at + 6.5 - time.monotonic()))  # past gc_grace
        assert list(client.repair())[-1].done  # collects on every replica
        status = client.cluster_status()
        assert {n.id: n.keys_by_family.get("post_tombstones", 0) for n in status.nodes} == {"n1": 0, "n2": 0, "n3": 0}
        assert all(n.replication.tombstones_collected >= 3 for n in status.nodes)  # the post's, two dead edges
        assert list(client.repair())[-1].out_of_sync == 0
        for node in ("n1", "n2", "n3"):  # from each replica: nothing deleted is back
            with FeedClient(handle.config.node(node).feed, timeout_s=10.0, map_aware=False) as direct:
                assert [p.id for p in direct.iter_user_posts("bob")] == [kept.id]
                assert direct.followers("bob").items == ["ann"]
                assert "bob" not in direct.following("cat").items
        digests = {n: node_digests(handle.config.node(n).address, 16, handle.local.secret) for n in ("n1", "n2", "n3")}
        assert digests["n1"] == digests["n2"] == digests["n3"]

        # A replica away longer than gc_grace: nothing is collected meanwhile, and it may not rejoin.
        handle.kill("n3")
        client.delete_post("bob", kept.id)
        time.sleep(6.5)
        list(client.repair())
        assert counts("post_tombstones") == {"n1": 1, "n2": 1, "n3": 0}  # n3 is down: shown as 0
        handle.local.start_process("n3")
        assert handle.local.wait_exit("n3", timeout_s=30) == 2
        log = handle.local.log_tail("n3", lines=5)
        assert "longer than replication.gc_grace" in log and "feedring node remove n3 --dead" in log, log
    finally:
        handle.stop()


def assert_all_healthy(client: FeedClient) -> None:
    nodes = client.cluster_status().nodes
    assert all(n.healthy and not n.replication.catching_up for n in nodes), [(n.id, n.healthy) for n in nodes]
