"""A node's own flows on the in-memory twin (the real node wiring of node/build.py over in-memory
stores): declared writes, quorum writes with replicas down, ApplyWrites answers, hints, ownership,
sealing, and repair's merge rule of every family. Each runs in milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from common.errors import InvalidArgument, Unavailable, WrongEpoch
from common.hot_state import HotPolicy, HotState
from node import keys, repair, writes
from node.build import STORAGE_SERVICE
from node.feed_store import FeedStore
from node.store import MemoryStore
from node.versioned import read_edge
from protos import feed_pb2, storage_pb2
from tests.inmem_cluster import InmemCluster, make_config


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def three_replicas() -> InmemCluster:
    return InmemCluster(make_config(nodes=3, partitions=16, replication_factor=3))


def post(post_id: int, author: str, text: str = "") -> feed_pb2.Post:
    return feed_pb2.Post(id=post_id, author=author, text=text or f"post {post_id}", created_at_ms=post_id)


def replicas_of(cluster: InmemCluster, key: str) -> tuple[str, ...]:
    node = next(iter(cluster.nodes.values()))
    return node.ownership.map.replicas(node.data.partition(key))


def apply_request(*replica_writes: storage_pb2.ReplicaWrite, epoch: int = 1) -> storage_pb2.ApplyWritesRequest:
    return storage_pb2.ApplyWritesRequest(epoch=epoch, writes=list(replica_writes))


def on_wire(write: writes.ReplicatedWrite, request: object) -> storage_pb2.ReplicaWrite:  # type: ignore[type-arg]
    return storage_pb2.ReplicaWrite(method=write.name, request=request.SerializeToString())  # type: ignore[attr-defined]


# -- the declarations ------------------------------------------------------------------------------


def test_every_write_rpc_is_declared_with_the_types_of_its_storage_method() -> None:
    methods = STORAGE_SERVICE.methods_by_name
    for write in writes.RPCS:
        method = methods[write.name]
        assert method.input_type.full_name == write.request.DESCRIPTOR.full_name, write.name
        assert method.output_type.full_name == write.response.DESCRIPTOR.full_name, write.name
    assert not writes.FINISH_DELIVERIES.rpc and "FinishDeliveries" not in methods
    assert writes.by_name("NoSuchWrite") is None and writes.by_name("StorePost") is writes.STORE_POST


def test_a_many_consumer_write_is_cut_to_the_keys_one_replica_holds() -> None:
    request = storage_pb2.InsertInboxRequest(posts=[post(1, "bob")], consumers=["a", "b", "c"])
    part = writes.INSERT_INBOX.limited(request, ["c", "a"])
    assert list(part.consumers) == ["a", "c"] and part.posts[0].id == 1
    assert list(request.consumers) == ["a", "b", "c"]  # the original is untouched
    edges = storage_pb2.EdgeBatch(version=7, edges=[storage_pb2.Edge(follower="f1", followee="x")])
    assert writes.ADD_FOLLOWER_MANY.limited(edges, ["y"]).edges == [] and writes.STORE_POST.limited(edges, []) is edges


# -- coordinated writes ----------------------------------------------------------------------------


def test_a_coordinated_write_answers_with_the_declared_reply_and_lands_on_every_replica() -> None:
    async def scenario() -> None:
        cluster = three_replicas()
        coordinator = cluster.nodes["n1"]
        reply = await coordinator.replicator.write(
            writes.STORE_POST, storage_pb2.StorePostRequest(author_key="bob", post=post(5, "bob"))
        )
        assert isinstance(reply, storage_pb2.StorePostResponse) and reply.created
        for node in cluster.nodes.values():
            assert node.data.posts.read_posts("bob", 10) == [post(5, "bob").SerializeToString()]
        await cluster.close()

    run(scenario)


def test_a_versioned_write_carries_one_version_to_every_replica() -> None:
    async def scenario() -> None:
        cluster = three_replicas()
        await cluster.nodes["n2"].replicator.write(
            writes.ADD_FOLLOWING, storage_pb2.AddFollowingRequest(follower="ann", followee="bob", followee_key="bob")
        )
        versions = set()
        for node in cluster.nodes.values():
            part = node.data.partition("ann")
            edge = read_edge(node.store.get(keys.edge_key(part, keys.FOLLOWING, "ann", "bob")))
            assert edge is not None and edge.alive
            versions.add(edge.version)
        assert len(versions) == 1 and versions.pop() > 0
        await cluster.close()

    run(scenario)


def test_with_one_replica_down_a_write_reaches_its_quorum_and_keeps_a_hint_for_it() -> None:
    async def scenario() -> None:
        cluster = three_replicas()
        down = replicas_of(cluster, "bob")[2]
        cluster.down(down)
        coordinator = cluster.nodes[replicas_of(cluster, "bob")[0]]
        reply = await coordinator.replicator.write(
            writes.STORE_POST, storage_pb2.StorePostRequest(author_key="bob", post=post(1, "bob"))
        )
        assert reply.created
        assert dict(coordinator.hints.counts) == {down: 1}
        assert cluster.nodes[down].data.posts.read_posts("bob", 10) == []
        await cluster.close()

    run(scenario)


def test_a_replica_believed_down_gets_a_hint_without_a_call_while_the_others_make_the_quorum() -> None:
    async def scenario() -> None:
        cluster = three_replicas()
        first, second, third = replicas_of(cluster, "bob")
        coordinator = cluster.nodes[first]
        coordinator.peers.health.failed(f"{third}.mem:1")  # its breaker is open: believed down
        reply = await coordinator.replicator.write(
            writes.STORE_POST, storage_pb2.StorePostRequest(author_key="bob", post=post(1, "bob"))
        )
        assert reply.created
        assert cluster.transport.calls[(f"{third}.mem:1", "ApplyWrites")] == 0  # not tried
        assert cluster.transport.calls[(f"{second}.mem:1", "ApplyWrites")] == 1
        assert dict(coordinator.hints.counts) == {third: 1}
        # Both others believed down: the quorum needs one of them, so each is tried after all.
        coordinator.peers.health.failed(f"{second}.mem:1")
        reply = await coordinator.replicator.write(
            writes.STORE_POST, storage_pb2.StorePostRequest(author_key="bob", post=post(2, "bob"))
        )
        assert reply.created
        assert cluster.transport.calls[(f"{second}.mem:1", "ApplyWrites")] == 2
        assert cluster.transport.calls[(f"{third}.mem:1", "ApplyWrites")] == 1
        await cluster.close()

    run(scenario)


def test_with_two_replicas_down_a_write_fails_saying_why_and_its_outcome_is_left_to_hints() -> None:
    async def scenario() -> None:
        cluster = three_replicas()
        first, *others = replicas_of(cluster, "bob")
        for node_id in others:
            cluster.down(node_id)
        coordinator = cluster.nodes[first]
        with pytest.raises(Unavailable, match="StorePost reached 1 of the 2 replicas"):
            await coordinator.replicator.write(
                writes.STORE_POST, storage_pb2.StorePostRequest(author_key="bob", post=post(1, "bob"))
            )
        assert coordinator.replicator.quorum_failures == 1
        assert sum(coordinator.hints.counts.values()) == 2  # applied here; the others get it later
        await cluster.close()

    run(scenario)


def test_hints_replayed_bring_a_replica_that_was_down_level_with_the_others() -> None:
    async def scenario() -> None:
        cluster = three_replicas()
        router = cluster.router()
        await router.follows.follow("ann", "bob")
        down = replicas_of(cluster, "bob")[1]
        cluster.down(down)
        await router.posts.post("bob", "while it was down")
        await cluster.settle(router)
        cluster.up(down)
        await cluster.replay_hints()
        assert sum(n.hints.total for n in cluster.nodes.values()) == 0
        replayed = sum(n.hints.replayed for n in cluster.nodes.values())
        assert replayed > 0
        digests = {n: [repair.digests(node.data, p) for p in range(16)] for n, node in cluster.nodes.items()}
        assert digests["n1"] == digests["n2"] == digests["n3"]
        await cluster.close()

    run(scenario)


def test_a_hint_for_a_partition_its_target_no_longer_holds_is_dropped() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=2, partitions=16, replication_factor=1))
        sender = cluster.nodes["n1"]
        foreign = next(f"u{i}" for i in range(200) if replicas_of(cluster, f"u{i}") == ("n1",))
        # A write for n2 about a key n2 does not hold (the map moved it since the hint was kept).
        request = storage_pb2.StorePostRequest(author_key=foreign, post=post(3, foreign))
        sender.hints.add("n2", on_wire(writes.STORE_POST, request))
        await cluster.replay_hints()
        assert sender.hints.total == 0 and sender.hints.dropped == 1 and sender.hints.replayed == 0
        await cluster.close()

    run(scenario)


def test_a_hint_refused_because_its_partition_is_sealed_waits_for_the_move() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=2, partitions=16, replication_factor=1))
        target = cluster.nodes["n2"]
        mine = next(f"u{i}" for i in range(200) if replicas_of(cluster, f"u{i}") == ("n2",))
        target.mover.seal([target.data.partition(mine)])
        sender = cluster.nodes["n1"]
        request = storage_pb2.StorePostRequest(author_key=mine, post=post(4, mine))
        sender.hints.add("n2", on_wire(writes.STORE_POST, request))
        await cluster.replay_hints()
        assert sender.hints.total == 1  # still a replica of it: kept
        target.ownership.unseal([target.data.partition(mine)])
        await cluster.replay_hints()
        assert sender.hints.total == 0 and target.data.posts.read_posts(mine, 10) != []
        await cluster.close()

    run(scenario)


# -- ApplyWrites ----------------------------------------------------------------------------------


def test_apply_writes_answers_each_write_on_its_own() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=1, partitions=16))
        node = cluster.nodes["n1"]
        good = on_wire(writes.STORE_POST, storage_pb2.StorePostRequest(author_key="bob", post=post(9, "bob")))
        unknown = storage_pb2.ReplicaWrite(method="DropEverything", request=b"")
        garbled = storage_pb2.ReplicaWrite(method="StorePost", request=b"\xff\xff\xff")
        reply = await node.peers.apply_writes.on_node("n1", apply_request(unknown, garbled, good))
        codes = [r.code for r in reply.results]
        assert codes[:2] == [InvalidArgument("").code_number] * 2 and codes[2] == 0
        assert "not a replicated write" in reply.results[0].message
        assert storage_pb2.StorePostResponse.FromString(reply.results[2].response).created
        await cluster.close()

    run(scenario)


def test_apply_writes_refuses_a_key_this_node_does_not_hold_with_its_epoch() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=2, partitions=16))
        foreign = next(f"u{i}" for i in range(200) if replicas_of(cluster, f"u{i}") == ("n2",))
        write = on_wire(writes.STORE_POST, storage_pb2.StorePostRequest(author_key=foreign, post=post(1, foreign)))
        reply = await cluster.nodes["n1"].peers.apply_writes.on_node("n1", apply_request(write))
        result = reply.results[0]
        assert result.code == WrongEpoch("", 0).code_number and result.epoch == 1
        assert "does not own partition" in result.message
        await cluster.close()

    run(scenario)


# -- ownership and sealing -------------------------------------------------------------------------


def test_a_sealed_partition_refuses_writes_but_a_finished_delivery_may_still_be_forgotten() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=1, partitions=16))
        node = cluster.nodes["n1"]
        await node.delivery.stop()  # the record stays for this test
        stored = storage_pb2.StorePostRequest(author_key="bob", post=post(2, "bob"))
        await node.replicator.write(writes.STORE_POST, stored)
        node.mover.seal([node.data.partition("bob")])
        with pytest.raises(WrongEpoch, match="handed over"):
            await node.replicator.write(
                writes.STORE_POST, storage_pb2.StorePostRequest(author_key="bob", post=post(3, "bob"))
            )
        done = storage_pb2.FinishedDelivery(author_key="bob", post_id=2, kind=storage_pb2.Delivery.INSERT)
        reply = await node.replicator.write(
            writes.FINISH_DELIVERIES, storage_pb2.FinishDeliveriesRequest(finished=[done])
        )
        assert reply.removed == 1 and node.delivery.log.count() == 0
        await cluster.close()

    run(scenario)


def test_an_adopted_map_is_persisted_and_a_restart_comes_back_with_it() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=2, partitions=16))
        node = cluster.nodes["n1"]
        newer = node.ownership.map.__class__(**{**node.ownership.map.__dict__, "epoch": 7})
        assert node.ownership.adopt(newer) and not node.ownership.adopt(newer)
        assert node.peers.map.epoch == 7  # the node's own client routes by it too
        restarted = cluster.restart("n1")
        assert restarted.ownership.map.epoch == 7
        await cluster.close()

    run(scenario)


def test_a_fan_out_write_checks_ownership_slice_by_slice() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=2, partitions=16))
        node = cluster.nodes["n1"]
        mine = [f"u{i}" for i in range(400) if replicas_of(cluster, f"u{i}") == ("n1",)][:70]
        foreign = next(f"u{i}" for i in range(400) if replicas_of(cluster, f"u{i}") == ("n2",))
        for consumer in mine:
            node.data.graph.add_following(consumer, "bob")
        request = storage_pb2.InsertInboxRequest(epoch=1, posts=[post(1, "bob")], consumers=[*mine, foreign])
        with pytest.raises(WrongEpoch):
            await node.replicator.local.apply(writes.INSERT_INBOX, request)
        # The first slice (64 consumers) was written before the refusal; a retry is harmless.
        assert sum(1 for c in mine if node.data.inboxes.read(c, 5)) == 64
        await cluster.close()

    run(scenario)


# -- repair: each family's merge rule --------------------------------------------------------------


def two_stores() -> tuple[FeedStore, FeedStore]:
    policy = HotPolicy(3, 0.5)
    return (
        FeedStore(MemoryStore(), partitions=4, timeline_cap=5, hot_policy=policy),
        FeedStore(MemoryStore(), partitions=4, timeline_cap=5, hot_policy=policy),
    )


def merge_all(source: FeedStore, target: FeedStore) -> int:
    changed = 0
    for part in range(source.partitions):
        entries = [(e.key, e.value) for e in repair.read_buckets(source, part, range(repair.BUCKETS))]
        changed += repair.merge(target, entries)
    return changed


def same_digests(a: FeedStore, b: FeedStore) -> bool:
    return all(repair.digests(a, p) == repair.digests(b, p) for p in range(a.partitions))


def test_merging_a_post_copies_it_with_its_count() -> None:
    a, b = two_stores()
    a.posts.store_post("bob", post(1, "bob"))
    assert merge_all(a, b) == 1 and merge_all(a, b) == 0  # a second merge changes nothing
    assert b.posts.read_posts("bob", 5) == a.posts.read_posts("bob", 5)
    assert b.counters("bob").post_count == 1  # type: ignore[union-attr]


def test_merging_a_post_tombstone_removes_the_post_and_owes_its_retraction() -> None:
    a, b = two_stores()
    for store in (a, b):
        store.posts.store_post("bob", post(1, "bob"))
    a.posts.remove_post("bob", 1, 1 << 16)
    merge_all(a, b)
    assert b.posts.read_posts("bob", 5) == [] and b.counters("bob").post_count == 0  # type: ignore[union-attr]
    pending = b.deliveries.pending(range(4), 10)
    assert [r.kind for _, r in pending] == [storage_pb2.Delivery.RETRACT]
    assert same_digests(a, b)


def test_merging_a_post_never_brings_back_one_deleted_here() -> None:
    a, b = two_stores()
    a.posts.store_post("bob", post(1, "bob"))
    b.posts.remove_post("bob", 1, 1 << 16)  # the delete reached b first
    merge_all(a, b)
    assert b.posts.read_posts("bob", 5) == []


def test_merging_an_inbox_entry_follows_the_consumers_edge_and_tombstones() -> None:
    a, b = two_stores()
    a.graph.add_following("fan", "bob", version=10)  # b has not seen the follow yet: it takes entries
    a.inboxes.insert([post(1, "bob"), post(2, "bob")], ["fan"])
    b.inboxes.remove(2, ["fan"])  # deleted here already
    merge_all(a, b)
    assert [feed_pb2.Post.FromString(r).id for r in b.inboxes.read("fan", 5)] == [1]
    c, _ = two_stores()  # a replica where fan unfollowed bob takes no entry
    c.graph.add_following("fan", "bob", version=10)
    c.graph.remove_following("fan", "bob", version=20)
    repair.merge(c, [(k, v) for k, v in a.store.scan(b"") if keys.family_of(k) == keys.INBOX])
    assert c.inboxes.read("fan", 5) == []


def test_merging_an_inbox_tombstone_removes_the_entry() -> None:
    a, b = two_stores()
    for store in (a, b):
        store.graph.add_following("fan", "bob", version=10)
        store.inboxes.insert([post(1, "bob")], ["fan"])
    a.inboxes.remove(1, ["fan"])
    merge_all(a, b)
    assert b.inboxes.read("fan", 5) == [] and b.counters("fan").inbox_size == 0  # type: ignore[union-attr]
    assert same_digests(a, b)


def test_merging_follow_edges_keeps_the_newest_and_an_unfollow_purges_the_inbox() -> None:
    a, b = two_stores()
    b.graph.add_following("fan", "bob", followee_key="bob", version=10)
    b.inboxes.insert([post(1, "bob")], ["fan"])
    a.graph.add_following("fan", "bob", followee_key="bob", version=10)
    a.graph.remove_following("fan", "bob", version=20)  # the newer unfollow
    merge_all(a, b)
    assert b.graph.list_edges(keys.FOLLOWING, "fan", "", 5) == [] and b.inboxes.read("fan", 5) == []
    assert b.counters("fan").following_count == 0  # type: ignore[union-attr]
    older, _ = two_stores()
    older.graph.add_following("fan", "bob", followee_key="bob", version=5)
    assert merge_all(older, b) == 0  # an older follow does not undo it


def test_merging_follower_edges_counts_them_and_may_start_a_hot_transition() -> None:
    a, b = two_stores()
    for i in range(3):
        a.graph.add_follower("star", f"f{i}", "star", 0, version=10 + i)
    merge_all(a, b)
    assert b.registry.follower_count("star") == 3
    assert b.registry.state("star") is HotState.MIGRATING  # threshold 3, as on a


def test_merging_a_merged_at_read_mark_beside_a_dead_follow_keeps_it_dead() -> None:
    a, b = two_stores()
    a.graph.add_following("fan", "star", hot=True, followee_key="star", version=10)
    b.graph.add_following("fan", "star", followee_key="star", version=10)
    b.graph.remove_following("fan", "star", version=20)
    merge_all(a, b)
    assert b.graph.merged_at_read("fan") == []


def test_merging_registry_entries_and_salted_counts_keeps_the_newest() -> None:
    a, b = two_stores()
    a.registry.set_state("star", HotState.HOT, version=30)
    b.registry.set_state("star", HotState.COOLING, version=20)
    a.registry.report_follower_count("star", "star#1", 7, version=5)
    b.registry.report_follower_count("star", "star#1", 2, version=3)
    merge_all(a, b)
    assert b.registry.state("star") is HotState.HOT
    assert b.registry.salted_followers(b.partition("star"), "star") == 7
    merge_all(b, a)
    assert same_digests(a, b)


# -- key parsing -----------------------------------------------------------------------------------


def test_keys_parse_back_to_what_built_them() -> None:
    record = keys.delivery_key(513, "bob#3", 2**40 + 5, 1)
    assert keys.delivery_parts(record) == ("bob#3", 2**40 + 5, 1) and keys.partition_of_key(record) == 513
    edge = keys.edge_key(7, keys.FOLLOWERS, "star#2", "fan")
    assert keys.user_of(edge) == b"star#2" and keys.other_user_of(edge) == "fan"
    hint = keys.hint_key("n12", 99)
    assert keys.hint_target_of(hint) == "n12" and keys.hint_sequence_of(hint) == 99 and keys.is_node_wide(hint)
    assert keys.registry_user_of(keys.registry_key(3, "ann")) == "ann"
    assert keys.meta_user_of(keys.meta_key(3, "ann#1")) == "ann#1"


def test_the_oldest_delivery_age_is_looked_up_rarely_grows_with_the_clock_and_is_zero_once_nothing_is_owed() -> None:
    """Status and the metrics snapshot ask every second; each look parses every record owed, apart
    (an ask answers from the last look; status waits for the look it starts). Once the record
    found is done, the next ask looks again: a younger record owed does not read as old."""

    async def scenario() -> None:
        cluster = three_replicas()
        driver = cluster.nodes[replicas_of(cluster, "bob")[0]]
        await driver.delivery.stop()  # the record stays owed
        await driver.replicator.write(
            writes.STORE_POST, storage_pb2.StorePostRequest(author_key="bob", post=post(1, "bob"))
        )
        (key, record), *_ = driver.delivery.log.pending(driver.ownership.owned, 10)
        record.created_at_ms -= 30_000  # owed for 30 s
        driver.delivery.log.checkpoint(key, record)
        await driver.replicator.write(
            writes.STORE_POST, storage_pb2.StorePostRequest(author_key="bob", post=post(2, "bob"))
        )  # a second record, fresh
        looks = []
        scan = driver.delivery.log.oldest
        driver.delivery.log.oldest = lambda *args: looks.append(1) or scan(*args)  # type: ignore[method-assign]

        async def asked() -> float:
            """What status reports: an ask, answered once the look it started has landed."""
            return await driver.delivery.oldest_age_settled()

        assert driver.delivery.oldest_age_s() == 0.0  # nothing looked at yet: the look runs apart
        first = await asked()
        await asyncio.sleep(0.05)
        second = await asked()
        assert 30 <= first < second < 31 and len(looks) == 1
        # On a loaded node a look takes tens of ms, and looks keep to 1% of the time: none for a while.
        driver.delivery._oldest_look_cost_s = 10.0
        driver.delivery.log.finish(key)
        assert await asked() < 5 and len(looks) == 1  # the fresh one's age: the look kept it too
        driver.delivery._oldest_look_cost_s = 0.0
        for pending_key, _ in driver.delivery.log.pending(driver.ownership.owned, 10):
            driver.delivery.log.finish(pending_key)
        assert await asked() == 0.0
        # A look that found none, then a record owed: it is looked for again, not read as 0.
        driver.delivery.log.count = lambda: 1  # type: ignore[method-assign]  (a standby copy, say)
        assert await asked() == 0.0
        await driver.replicator.write(
            writes.STORE_POST, storage_pb2.StorePostRequest(author_key="bob", post=post(3, "bob"))
        )
        (key3, record3), *_ = driver.delivery.log.pending(driver.ownership.owned, 10)
        record3.created_at_ms -= 20_000
        driver.delivery.log.checkpoint(key3, record3)
        for _ in range(100):  # within the looks' 1% of the time: 100x the last look's cost
            if await asked() >= 20:
                break
            await asyncio.sleep(0.01)
        assert 20 <= await asked() < 21 and len(looks) < 10
        await cluster.close()

    run(scenario)


def test_records_are_looked_for_round_the_partitions_so_none_waits_behind_newer_ones_in_lower_partitions() -> None:
    store, _ = two_stores()
    authors = {store.partition(f"u{i}"): f"u{i}" for i in range(40)}  # an author in each of the 4 partitions
    for i, author in enumerate(authors.values()):
        store.posts.store_post(author, post(i + 1, author))
    parts = sorted(authors)
    middle = parts[len(parts) // 2]
    pending = store.deliveries.pending(parts, len(parts), from_partition=middle)
    order = [keys.partition_of_key(k) for k, _ in pending]
    assert order == [p for p in parts if p >= middle] + [p for p in parts if p < middle]
    past_the_last = store.deliveries.pending(parts, 2, from_partition=parts[-1] + 1)
    assert [keys.partition_of_key(k) for k, _ in past_the_last] == parts[:2]
