"""Replicas on the in-memory twin: quorum writes, reads falling over, hints, versions, tombstones,
digests and repair, and a replica taking over its primary's deliveries. Real node servicers, no
processes: each scenario runs in milliseconds."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable

import pytest

from common import post_bytes
from common.errors import Unavailable
from feed.post_ids import created_at_ms
from node import delivery_log, delivery_takeover, keys, repair, writes
from node.feed_store import FeedStore
from node.hints import HintLog
from node.store import MemoryStore
from protos import admin_pb2, feed_pb2, storage_pb2
from router.flows import RouterFlows
from router.membership_plan import Kind
from tests.inmem_cluster import InmemCluster, make_config


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


async def timeline(router: RouterFlows, user: str) -> list[str]:
    return [p.text for p in post_bytes.decode(await router.timeline.read(user, 100, 0))]


def replicated_cluster() -> InmemCluster:
    return InmemCluster(make_config(nodes=3, partitions=16, replication_factor=3))


def all_digests(cluster: InmemCluster) -> dict[str, list[list[int]]]:
    return {
        node_id: [repair.digests(node.data, p) for p in range(cluster.config.partitions)]
        for node_id, node in cluster.nodes.items()
    }


def primary_of(cluster: InmemCluster, key: str) -> str:
    node = next(iter(cluster.nodes.values()))
    return node.ownership.map.primary(node.data.partition(key))


def lose_hints(cluster: InmemCluster, target: str | None = None) -> None:
    """Every hint held for `target` (for anyone: None) is lost, as with its holder's disk."""
    for node in cluster.nodes.values():
        for held_for in [target] if target else list(node.hints.counts):
            node.hints.remove(held_for, [k for k, _ in node.hints.oldest(held_for, 10_000)])


async def reader_whose_primary_missed_a_post(cluster: InmemCluster, router: RouterFlows) -> str:
    """A follower of bob whose inbox's primary, n2, was down for bob's "second" post (after "first")
    and is up again with its hints lost."""
    reader = next(u for u in (f"r{i}" for i in range(1000)) if primary_of(cluster, u) == "n2")
    await router.follows.follow(reader, "bob")
    await router.posts.post("bob", "first")
    await cluster.settle(router)
    cluster.down("n2")
    await router.posts.post("bob", "second")
    await cluster.settle(router)
    lose_hints(cluster)
    cluster.up("n2")
    await cluster.probe()
    return reader


def test_every_write_lands_on_every_replica() -> None:
    async def scenario() -> None:
        cluster = replicated_cluster()
        router = cluster.router()
        await router.follows.follow("ann", "bob")
        await router.posts.post("bob", "hello")
        await cluster.settle(router)
        for node in cluster.nodes.values():
            inbox = node.data.inboxes.read("ann", 10)
            assert [feed_pb2.Post.FromString(raw).text for raw in inbox] == ["hello"]
        digests = all_digests(cluster)
        assert digests["n1"] == digests["n2"] == digests["n3"]
        await cluster.close()

    run(scenario)


def test_with_one_replica_down_writes_and_reads_go_on_and_hints_catch_it_up() -> None:
    async def scenario() -> None:
        cluster = replicated_cluster()
        router = cluster.router()
        await router.follows.follow("ann", "bob")
        down = primary_of(cluster, "bob")
        cluster.down(down)
        # Posts, follows and reads all succeed with the author's and reader's primary gone.
        await router.posts.post("bob", "while one was down")
        await router.follows.follow("cat", "bob")
        await cluster.settle(router)
        assert await timeline(router, "ann") == ["while one was down"]
        held = sum(n.hints.total for n in cluster.nodes.values())
        assert held > 0, "the writes the down replica missed are held as hints"
        assert all_digests(cluster)[down] != all_digests(cluster)[next(n for n in cluster.nodes if n != down)]
        cluster.up(down)
        await cluster.replay_hints()
        await cluster.settle(router)
        assert sum(n.hints.total for n in cluster.nodes.values()) == 0
        digests = all_digests(cluster)
        assert digests["n1"] == digests["n2"] == digests["n3"]
        await cluster.close()

    run(scenario)


def test_a_write_that_cannot_reach_a_majority_fails_and_says_why() -> None:
    async def scenario() -> None:
        cluster = replicated_cluster()
        router = cluster.router()
        others = [n for n in cluster.nodes if n != primary_of(cluster, "bob")]
        for node_id in others:
            cluster.down(node_id)
        with pytest.raises(Unavailable, match="write_quorum"):
            await router.posts.post("bob", "nobody will hear")
        await cluster.close()

    run(scenario)


def test_edges_converge_whatever_order_their_writes_arrive_in() -> None:
    ops = [("follow", 1 << 20), ("unfollow", 2 << 20), ("follow", 3 << 20), ("unfollow", 4 << 20)]
    outcomes = set()
    for order in itertools.permutations(ops):
        feed = FeedStore(MemoryStore(), partitions=8, timeline_cap=10)
        for op, version in order:
            if op == "follow":
                feed.graph.add_following("ann", "bob", followee_key="bob", version=version)
                feed.graph.add_follower("bob", "ann", "bob", 0, version=version)
            else:
                feed.graph.remove_following("ann", "bob", version=version)
                feed.graph.remove_follower("bob", "ann", version=version)
        counters = feed.counters("ann"), feed.counters("bob")
        outcomes.add(
            (
                tuple(feed.graph.list_edges(keys.FOLLOWING, "ann", "", 10)),
                counters[0].following_count if counters[0] else 0,
                counters[1].follower_count if counters[1] else 0,
                tuple(tuple(repair.digests(feed, p)) for p in range(8)),
            )
        )
    assert len(outcomes) == 1
    ((following, following_count, follower_count, _),) = outcomes
    assert following == () and following_count == 0 and follower_count == 0  # the last write was an unfollow


def test_a_delete_that_arrives_before_its_post_still_wins() -> None:
    feed = FeedStore(MemoryStore(), partitions=8, timeline_cap=10)
    assert feed.posts.remove_post("bob", 42, 1 << 16) is None
    created, _, _ = feed.posts.store_post("bob", feed_pb2.Post(id=42, author="bob", text="late"))
    assert not created and feed.posts.read_posts("bob", 10) == []


def test_repair_copies_what_a_replica_missed_and_never_resurrects_a_delete_or_an_unfollow() -> None:
    async def scenario() -> None:
        cluster = replicated_cluster()
        router = cluster.router()
        await router.follows.follow("ann", "bob")
        await router.follows.follow("cat", "bob")
        doomed = await router.posts.post("bob", "doomed")
        await cluster.settle(router)
        cluster.down("n3")
        await router.posts.delete("bob", doomed.id)
        await router.follows.unfollow("cat", "bob")
        await router.posts.post("bob", "fresh")
        await router.follows.follow("dan", "bob")
        await cluster.settle(router)
        lose_hints(cluster)  # only repair can help now
        cluster.up("n3")
        await cluster.probe()
        repaired = [p async for p in cluster.nodes["n1"].repairer.repair(list(range(16)))]
        assert repaired[-1].done and repaired[-1].out_of_sync > 0
        digests = all_digests(cluster)
        assert digests["n1"] == digests["n2"] == digests["n3"]
        n3 = cluster.nodes["n3"].data
        assert [feed_pb2.Post.FromString(r).text for r in n3.posts.read_posts("bob", 10)] == ["fresh"]
        assert n3.graph.list_edges(keys.FOLLOWERS, "bob", "", 10) == ["ann", "dan"]
        assert [feed_pb2.Post.FromString(r).text for r in n3.inboxes.read("ann", 10)] == ["fresh"]
        assert n3.counters("bob").follower_count == 2 and n3.counters("bob").post_count == 1
        # A second pass finds nothing to do.
        again = [p async for p in cluster.nodes["n2"].repairer.repair(list(range(16)))]
        assert again[-1].out_of_sync == 0
        await cluster.close()

    run(scenario)


def test_a_node_that_started_with_nothing_beside_empty_peers_skips_its_startup_repair_and_a_restarted_one_runs_it() -> (
    None
):
    # What the node decides at start (node/server.py): its own store empty, every peer's first answer.
    assert repair.missed_nothing(True, ["n2", "n3"], {"n2": False, "n3": False})
    assert not repair.missed_nothing(False, ["n2", "n3"], {"n2": False, "n3": False})  # a restart
    assert not repair.missed_nothing(True, ["n2", "n3"], {"n2": False, "n3": True})  # a replaced disk
    assert not repair.missed_nothing(True, ["n2", "n3"], {"n2": False})  # n3 never answered
    assert not repair.holds_data({"users": 20, "hot_registry": 20})  # cluster.toml's pinned hot users
    assert repair.holds_data({"users": 20, "hot_registry": 20, "followers": 1})

    async def scenario() -> None:
        cluster = replicated_cluster()  # repair_interval_s=0: run() makes its start-up pass, then returns
        router = cluster.router()
        await router.posts.post("bob", "hello")
        await cluster.settle(router)
        skipped, restarted = cluster.nodes["n1"].repairer, cluster.nodes["n2"].repairer
        skipped.skip_startup_pass()
        await skipped.run(first_after_s=0)
        await restarted.run(first_after_s=0)
        assert skipped.stats.last_repair_ms == 0 and skipped.stats.partitions_checked == 0
        assert restarted.stats.last_repair_ms > 0 and restarted.stats.partitions_checked == 16
        await cluster.close()

    run(scenario)


async def _fans_of_bob(router: RouterFlows, count: int = 30) -> list[str]:
    fans = [f"fan{i}" for i in range(count)]
    for fan in fans:
        await router.follows.follow(fan, "bob")
    return fans


def _bobs_replicas(cluster: InmemCluster) -> list[str]:
    """bob's partition's replicas, primary first."""
    some_node = next(iter(cluster.nodes.values()))
    return list(some_node.ownership.map.replicas(some_node.data.partition("bob")))


def _finish_records_on(cluster: InmemCluster, node_id: str) -> None:
    """`node_id` finishes every record it holds (its word does not reach the other replicas)."""
    log = cluster.nodes[node_id].delivery.log
    for key, _ in log.pending(set(range(cluster.config.partitions)), 10):
        log.finish(key)


async def _until_fans_see(router: RouterFlows, fans: list[str], text: str, failure: str) -> None:
    """Until every fan's timeline is the one post `text` (5 s at most, else `failure`)."""
    deadline = asyncio.get_running_loop().time() + 5
    while [await timeline(router, fan) for fan in fans] != [[text]] * len(fans):
        assert asyncio.get_running_loop().time() < deadline, failure
        await asyncio.sleep(0.05)


def test_a_replica_takes_over_the_deliveries_of_a_primary_that_stays_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery_takeover, "TAKEOVER_AFTER_S", 0.0)

    async def scenario() -> None:
        cluster = replicated_cluster()
        router = cluster.router()
        fans = await _fans_of_bob(router)
        primary = primary_of(cluster, "bob")
        await cluster.nodes[primary].delivery.stop()  # it stores the post, then dies before delivering
        await router.posts.post("bob", "survives its node")
        assert cluster.outstanding() == 3  # one record on each replica of bob's partition
        cluster.down(primary)
        await cluster.probe()
        for node_id, node in cluster.nodes.items():
            if node_id != primary:
                node.records_written.note(())
        deadline = asyncio.get_running_loop().time() + 5
        while [await timeline(router, fan) for fan in fans] != [["survives its node"]] * len(fans):
            assert asyncio.get_running_loop().time() < deadline, "no replica delivered the post"
            await asyncio.sleep(0.01)
        # The replica that delivered removed the record on the replicas it could reach (just after
        # its last inbox write: wait for it).
        alive = [n for n in cluster.nodes if n != primary]
        while sum(cluster.nodes[n].delivery.log.count() for n in alive):
            assert asyncio.get_running_loop().time() < deadline, "the record was not removed"
            await asyncio.sleep(0.01)
        await cluster.close()

    run(scenario)


def test_a_record_only_the_last_replica_holds_is_delivered_when_the_primary_stays_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The post reached a quorum of the primary and the last replica, then the primary died: the
    # replica that takes over lacks the record, so the last one must ask it, not the dead primary.
    monkeypatch.setattr(delivery_takeover, "TAKEOVER_AFTER_S", 0.001)
    monkeypatch.setattr(delivery_takeover, "ORPHAN_AFTER_S", 0.0)
    monkeypatch.setattr(delivery_takeover, "ORPHAN_CHECK_EVERY_S", 0.0)

    async def scenario() -> None:
        cluster = replicated_cluster()
        router = cluster.router()
        fans = await _fans_of_bob(router)
        primary, second, last = _bobs_replicas(cluster)
        await cluster.nodes[primary].delivery.stop()
        await router.posts.post("bob", "only the last replica knows")
        _finish_records_on(cluster, second)
        assert [cluster.nodes[n].delivery.log.count() for n in (primary, second, last)] == [1, 0, 1]
        cluster.down(primary)
        await cluster.probe()
        await asyncio.sleep(0.01)
        await _until_fans_see(router, fans, "only the last replica knows", "the last replica never drove the record")
        await cluster.close()

    run(scenario)


def test_a_replica_catching_up_adopts_no_record_until_it_has_caught_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # A restarted replica receives, among its peers' hints, records the driver finished while it
    # was down, their finishing notes queued behind them: it must not deliver them all again.
    monkeypatch.setattr(delivery_takeover, "ORPHAN_AFTER_S", 0.0)
    monkeypatch.setattr(delivery_takeover, "ORPHAN_CHECK_EVERY_S", 0.0)

    async def scenario() -> None:
        cluster = replicated_cluster()
        router = cluster.router()
        fans = await _fans_of_bob(router)
        primary, second, last = _bobs_replicas(cluster)
        for node_id in (primary, second):
            await cluster.nodes[node_id].delivery.stop()
        cluster.nodes[last].status.catching_up = True  # restarted: its peers' hints bring the record
        await router.posts.post("bob", "finished while the last replica was away")
        for node_id in (primary, second):  # the driver finished it; the note has not reached `last`
            _finish_records_on(cluster, node_id)
        cluster.nodes[last].records_written.note(())
        await asyncio.sleep(0.3)
        assert [await timeline(router, fan) for fan in fans] == [[]] * len(fans)  # not adopted
        cluster.nodes[last].status.catching_up = False  # caught up, the note still lost: now it is
        cluster.nodes[last].records_written.note(())
        await _until_fans_see(router, fans, "finished while the last replica was away", "the record was never adopted")
        await cluster.close()

    run(scenario)


def test_hints_are_kept_across_a_restart_and_bounded_per_target() -> None:
    store = MemoryStore()
    hints = HintLog(store, max_per_target=3)
    write = storage_pb2.ReplicaWrite(method="StorePost", request=b"")
    for _ in range(5):
        hints.add("n2", write)
    hints.add("n3", write)
    assert dict(hints.counts) == {"n2": 3, "n3": 1} and hints.dropped == 2
    again = HintLog(store)
    again.load()  # a restarted node finds them
    assert dict(again.counts) == {"n2": 3, "n3": 1}
    oldest = again.oldest("n2", 2)
    again.remove("n2", [k for k, _ in oldest])
    assert dict(again.counts) == {"n2": 1, "n3": 1}


def test_two_attempts_of_one_post_on_different_replicas_end_as_the_later_one_everywhere() -> None:
    """A post's first attempt stored only on its coordinator, which then died; the retry (same
    request_id) coordinated elsewhere as a new post and acknowledged: the first coordinator, back,
    takes the retry's post from its hint in place of its own, so every replica (and every reader)
    ends with the post the client was told about, once."""

    async def scenario() -> None:
        cluster = replicated_cluster()
        router = cluster.router()
        await router.follows.follow("fan", "bob")
        first = primary_of(cluster, "bob")
        early = feed_pb2.Post(id=1 << 40, author="bob", text="hello", created_at_ms=created_at_ms(1 << 40))
        cluster.nodes[first].data.posts.store_post("bob", early, "req-1")  # then it died
        cluster.down(first)
        await cluster.probe()
        acked = await router.posts.post("bob", "hello", request_id="req-1")
        assert acked.id != early.id
        cluster.up(first)
        await cluster.probe()
        await cluster.replay_hints()
        await cluster.settle(router)
        for node_id, node in cluster.nodes.items():
            assert node.data.posts.read_posts("bob", 10) == [acked.SerializeToString()], node_id
        assert [p.id for p in post_bytes.decode(await router.timeline.read("fan", 10, 0))] == [acked.id]
        # A retry now (its ack lost again) is answered with that post, and stores nothing new.
        again = await router.posts.post("bob", "hello", request_id="req-1")
        assert again.id == acked.id
        assert all(len(node.data.posts.read_posts("bob", 10)) == 1 for node in cluster.nodes.values())
        await cluster.close()

    run(scenario)


def test_hints_older_than_max_hint_age_are_dropped_and_the_younger_kept() -> None:
    store = MemoryStore()
    hints = HintLog(store, max_age_s=3600)
    write = storage_pb2.ReplicaWrite(method="StorePost", request=b"")
    for _ in range(4):
        hints.add("n2", write)
    hints.add("n3", write)
    (_, first), *_ = [(k, keys.hint_sequence_of(k)) for k, _ in hints.oldest("n2", 1)]
    assert hints.expire(now_us=first + 3_599_000_000) == 0  # not an hour old yet
    assert hints.expire(now_us=first + 3_600_000_000 + 2) >= 1  # the first two microseconds' worth
    left = len(list(store.scan(keys.HINTS_PREFIX)))
    assert left and hints.expire(now_us=first + 7_200_000_000) == left
    assert not hints.counts and hints.expired == 5
    assert HintLog(store, max_age_s=0).expire(now_us=1 << 62) == 0  # 0: no age limit


def test_a_hint_for_a_page_of_inboxes_is_replayed_for_the_keys_its_target_keeps_after_a_move() -> None:
    async def scenario() -> None:
        cluster = replicated_cluster()
        router = cluster.router()
        fans = [f"fan{i}" for i in range(40)]  # over every partition
        for fan in fans:
            await router.follows.follow(fan, "bob")
        missed = next(n for n in cluster.nodes if n != primary_of(cluster, "bob"))
        cluster.down(missed)
        post = await router.posts.post("bob", "while it was down")
        await cluster.settle(router)
        assert any(cluster.nodes[n].hints.counts.get(missed) for n in cluster.nodes)  # pages of inboxes
        cluster.up(missed)
        cluster.start_node("n4")
        request = admin_pb2.ChangeMembershipRequest(kind=Kind.ADD, node_id="n4", address="n4.mem:1")
        assert [p.phase async for p in router.membership.request(request)][-1] == "DONE"
        node = cluster.nodes[missed]
        kept = [f for f in fans if node.data.partition(f) in node.ownership.owned]
        assert 0 < len(kept) < len(fans)  # some of its partitions moved to n4
        await cluster.replay_hints()
        assert sum(n.hints.total for n in cluster.nodes.values()) == 0  # none stuck on the keys that left
        for fan in kept:
            assert [post_bytes.post_id(raw) for raw in node.data.inboxes.read(fan, 5)] == [post.id]

    run(scenario)


def test_a_replica_catching_up_refuses_reads_unless_no_other_replica_answers() -> None:
    """A replica that may lack acknowledged writes (restarted, hints still on their way) answers a
    read only as the last resort: callers read the others, and it only when they are all down."""

    async def scenario() -> None:
        cluster = replicated_cluster()
        router = cluster.router()
        reader = await reader_whose_primary_missed_a_post(cluster, router)
        router.storage.health.succeeded("n2.mem:1")  # the router believes it up: it asks it first
        cluster.nodes["n2"].status.catching_up = True  # as a restarted node is until caught up
        assert await timeline(router, reader) == ["second", "first"]  # n2, its primary, sent it on
        assert "n2.mem:1" in router.storage.health.lagging  # refused at once: the others first from now
        cluster.down("n1")
        cluster.down("n3")
        assert await timeline(router, reader) == ["first"]  # the last resort: n2, a little behind
        await cluster.close()

    run(scenario)


def test_of_two_replicas_catching_up_the_last_resort_is_the_one_complete_the_longest() -> None:
    """A new cluster's nodes each wait for their peers' word on hints; two peers killed meanwhile
    leave a survivor that was up all along still "catching up" beside a restarted one that missed
    writes. With no other replica answering, the read goes to the one complete the longest (CI,
    2026-12-05: the restarted one answered, and an acknowledged follow was read missing)."""

    async def scenario() -> None:
        cluster = replicated_cluster()
        router = cluster.router()
        reader = await reader_whose_primary_missed_a_post(cluster, router)
        now_ms = int(time.time() * 1000)
        for node_id, up_s in (("n2", 1), ("n3", 60)):  # n2 restarted a second ago; n3 up for a minute
            cluster.nodes[node_id].status.catching_up = True
            cluster.nodes[node_id].status.complete_since_ms = now_ms - up_s * 1000
        cluster.down("n1")
        router.storage.health.succeeded("n2.mem:1")  # believed up and not lagging: asked first
        router.storage.health.lagging.discard("n2.mem:1")
        assert await timeline(router, reader) == ["second", "first"]  # from n3, though n2 was asked first
        await cluster.close()

    run(scenario)


def test_a_follow_backfills_the_quorums_newest_posts_not_its_coordinators_and_never_a_deleted_one() -> None:
    """A follow's coordinator may be the replica of the author's partition a post has not reached
    yet, and that post's delivery may have paged the followers before the follow: the backfill
    comes from the whole quorum, less what any of it knows deleted."""

    async def scenario() -> None:
        cluster = replicated_cluster()
        router = cluster.router()
        author = next(u for u in (f"a{i}" for i in range(1000)) if primary_of(cluster, u) == "n1")
        old = await router.posts.post(author, "deleted while n3 was down")
        await cluster.settle(router)
        cluster.down("n3")
        kept = await router.posts.post(author, "posted while n3 was down")
        await router.posts.delete(author, old.id)
        await cluster.settle(router)
        lose_hints(cluster, "n3")  # n3's copies still on their way
        cluster.up("n3")
        await cluster.probe()
        request = storage_pb2.AddFollowerRequest(followee_key=author, follower="late", author=author, backfill_limit=50)
        reply = await cluster.nodes["n3"].replicator.write(writes.ADD_FOLLOWER, request)
        assert [p.id for p in reply.recent_posts] == [kept.id]
        await cluster.close()

    run(scenario)


def test_a_small_authors_post_reaches_a_follower_only_another_replica_has_after_the_drivers_own_list() -> None:
    """The driver writes the followers on its own copy at once, while another replica's list is
    read; a follow its copy missed (down then, its hint lost) still gets the post from that list."""

    async def scenario() -> None:
        cluster = replicated_cluster()
        router = cluster.router()
        author = next(u for u in (f"a{i}" for i in range(1000)) if primary_of(cluster, u) == "n1")
        for fan in ("fan1", "fan2"):
            await router.follows.follow(fan, author)
        await cluster.settle(router)
        cluster.down("n1")
        await router.follows.follow("fan3", author)  # n1, the driver, misses this edge
        await cluster.settle(router)
        lose_hints(cluster, "n1")
        cluster.up("n1")
        await cluster.probe()
        assert cluster.nodes["n1"].data.graph.list_edges(keys.FOLLOWERS, author, "", 10) == ["fan1", "fan2"]
        post = await router.posts.post(author, "hello")
        await cluster.settle(router)
        for fan in ("fan1", "fan2", "fan3"):
            assert await timeline(router, fan) == ["hello"], fan
        assert post.id
        await cluster.close()

    run(scenario)


def test_a_fan_out_page_returns_at_its_quorum_with_a_durable_hint_for_a_replica_still_writing_it() -> None:
    """A delivery checkpoints a page as done when its write returns. Were the delivering node killed
    with the slowest replica's forward in flight and nothing kept for it, that replica would lack
    the page until a repair; waiting for it instead slowed every delivery to its slowest replica."""

    async def scenario() -> None:
        cluster = replicated_cluster()
        driver, slow = "n1", "n2"
        address = cluster.config.node(slow).address
        apply_writes = cluster.transport.services[address]["ApplyWrites"]
        release = asyncio.Event()

        async def slowly(request: object, context: object) -> object:
            await release.wait()  # answers only once the test says so, well after the quorum (n1, n3)
            return await apply_writes(request, context)

        cluster.transport.services[address]["ApplyWrites"] = slowly
        request = storage_pb2.InsertInboxRequest(posts=[feed_pb2.Post(id=1 << 22, author="bob")], consumers=["ann"])
        await asyncio.wait_for(cluster.nodes[driver].replicator.write(writes.INSERT_INBOX, request), 1.0)
        assert cluster.nodes[driver].hints.counts == {slow: 1}
        # Status tells it apart from a missed write (a restarted node does not wait for it).
        assert cluster.nodes[driver].status.status().replication.in_flight_hints_by_target == {slow: 1}
        await cluster.nodes[driver].replayer.replay(slow)  # in flight: not replayed beside it
        assert cluster.nodes[slow].data.inboxes.read("ann", 10) == []
        release.set()  # the forward lands: its hint goes
        for _ in range(100):
            if not cluster.nodes[driver].hints.counts:
                break
            await asyncio.sleep(0.01)
        assert cluster.nodes[driver].hints.counts == {}
        assert len(cluster.nodes[slow].data.inboxes.read("ann", 10)) == 1

        release.clear()  # the next page's forward to n2 hangs, and the driver is killed meanwhile
        request = storage_pb2.InsertInboxRequest(posts=[feed_pb2.Post(id=2 << 22, author="bob")], consumers=["ann"])
        await asyncio.wait_for(cluster.nodes[driver].replicator.write(writes.INSERT_INBOX, request), 1.0)
        cluster.restart(driver)
        cluster.transport.services[address]["ApplyWrites"] = apply_writes
        assert cluster.nodes[driver].hints.counts == {slow: 1}  # on disk: the new process replays it
        assert cluster.nodes[driver].status.status().replication.in_flight_hints_by_target == {}  # missed now
        await cluster.replay_hints()
        assert cluster.nodes[driver].hints.counts == {}
        assert len(cluster.nodes[slow].data.inboxes.read("ann", 10)) == 2
        release.set()
        await cluster.close()

    run(scenario)


def test_a_finish_that_reaches_a_replica_before_its_record_keeps_the_late_record_from_coming_back() -> None:
    # A replica sealed during a move (or down) gets the post from a hint, after the driver's note
    # that its delivery is done: the post must be stored, the finished delivery not owed again.
    feed = FeedStore(MemoryStore(), partitions=8, timeline_cap=10)
    inserted = feed.deliveries.key("bob", 42, delivery_log.INSERT)
    assert feed.deliveries.finish(inserted) == 0  # the note first: nothing to remove yet
    created, _, _ = feed.posts.store_post("bob", feed_pb2.Post(id=42, author="bob", text="late"), replica=True)
    assert created and [post_bytes.post_id(p) for p in feed.posts.read_posts("bob", 10)] == [42]
    assert feed.deliveries.get(inserted) is None
    # The same for a delete's retraction; and a post whose finish did not come first still owes its own.
    retracted = feed.deliveries.key("bob", 42, delivery_log.RETRACT)
    assert feed.deliveries.finish(retracted) == 0
    assert feed.posts.remove_post("bob", 42, created_at_ms(42) << 16) is not None
    assert feed.deliveries.get(retracted) is None
    feed.posts.store_post("bob", feed_pb2.Post(id=43, author="bob", text="on time"))
    assert feed.deliveries.get(feed.deliveries.key("bob", 43, delivery_log.INSERT)) is not None
    assert len(feed.deliveries.finished_early) == 0  # each note is used once
