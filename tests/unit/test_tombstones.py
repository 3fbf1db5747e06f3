"""Tombstone collection on the in-memory twin (node/tombstones.py): nothing goes while a replica
cannot be reached, everything past gc_grace goes once a repair has seen every replica in sync, and
what a delete or an unfollow removed never comes back. Plus the start refusal of a node away
longer than gc_grace and the configuration's rule that hints expire before tombstones."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from common.config import ConfigError, load
from node import heartbeat, keys, repair
from node.feed_store import FeedStore
from node.store import MemoryStore
from node.tombstones import Tombstones, deleted_ms
from protos import feed_pb2
from tests.inmem_cluster import InmemCluster, make_config

GRACE_S = 100.0


def tombstones_on(data: FeedStore) -> int:
    return sum(1 for key, value in data.store.scan(b"") if deleted_ms(key, value) is not None)


def test_a_partition_is_collectable_only_once_in_sync_with_the_same_replicas() -> None:
    now = [1_000_000.0]
    gc = Tombstones(GRACE_S, wall=lambda: now[0])
    assert gc.horizon(3, ["n1", "n2", "n3"]) == 0  # never seen in sync
    gc.note_in_sync(3, 990_000_000, ["n3", "n1", "n2"])
    # The older of "gc_grace ago" and "a margin before the repair that saw it in sync".
    assert gc.horizon(3, ["n1", "n2", "n3"]) == min(1_000_000_000 - 100_000, 990_000_000 - gc.margin_ms)
    assert gc.horizon(3, ["n1", "n2", "n4"]) == 0  # another replica set since: not known in sync
    gc.note_in_sync(3, 980_000_000, ["n1", "n2", "n3"])  # an older pass's news changes nothing
    assert gc.in_sync_since(3, ["n1", "n2", "n3"]) == 990_000_000


def test_tombstones_are_collected_only_after_every_replica_has_them_and_nothing_deleted_returns() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3, partitions=16, replication_factor=3))
        later = [0.0]  # seconds every node's collector is ahead of the real clock
        for node in cluster.nodes.values():
            node.repairer.tombstones = Tombstones(GRACE_S, wall=lambda: time.time() + later[0])
        router = cluster.router()
        await router.follows.follow("ann", "bob")
        await router.follows.follow("cat", "bob")
        doomed = await router.posts.post("bob", "doomed")
        await cluster.settle(router)
        cluster.down("n3")  # n3 keeps the post and cat's follow: it never hears of the deletes
        await router.posts.delete("bob", doomed.id)
        await router.follows.unfollow("cat", "bob")
        await cluster.settle(router)
        for node in cluster.nodes.values():  # hints lost: only repair can tell n3
            for target in list(node.hints.counts):
                node.hints.remove(target, [k for k, _ in node.hints.oldest(target, 10_000)])
        n1, n3 = cluster.nodes["n1"], cluster.nodes["n3"]
        everything = list(range(16))

        later[0] = 10 * GRACE_S  # long past gc_grace, but n3 cannot be reached
        for _ in range(2):
            [p async for p in n1.repairer.repair(everything)]
        held = {n: tombstones_on(node.data) for n, node in cluster.nodes.items()}
        assert held["n1"] >= 3 and held["n2"] >= 3 and held["n3"] == 0  # a post's, two dead edges

        cluster.up("n3")
        await cluster.probe()
        [p async for p in n1.repairer.repair(everything)]  # in sync from now: n3 has the tombstones
        assert tombstones_on(n3.data) == held["n1"]
        assert n3.data.posts.read_posts("bob", 10) == []
        later[0] = 20 * GRACE_S
        [p async for p in n1.repairer.repair(everything)]  # collects, and tells the others to
        assert {n: tombstones_on(node.data) for n, node in cluster.nodes.items()} == {"n1": 0, "n2": 0, "n3": 0}
        assert sum(node.data.tombstones_collected for node in cluster.nodes.values()) == 3 * held["n1"]

        later[0] = 30 * GRACE_S
        final = [p async for p in n1.repairer.repair(everything)][-1]
        assert final.out_of_sync == 0  # the replicas agree without the tombstones
        for node in cluster.nodes.values():
            assert node.data.posts.read_posts("bob", 10) == []
            assert node.data.graph.list_edges(keys.FOLLOWERS, "bob", "", 10) == ["ann"]
            assert [repair.digests(node.data, p) for p in everything] == [
                repair.digests(n1.data, p) for p in everything
            ]
        assert [p.text for p in [feed_pb2.Post.FromString(r) for r in n1.data.inboxes.read("ann", 10)]] == []
        await cluster.close()

    asyncio.run(scenario())


def test_tombstones_younger_than_gc_grace_stay_however_in_sync() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3, partitions=16, replication_factor=3))
        for node in cluster.nodes.values():
            node.repairer.tombstones = Tombstones(GRACE_S)
        router = cluster.router()
        await router.follows.follow("cat", "bob")
        doomed = await router.posts.post("bob", "doomed")
        await router.posts.delete("bob", doomed.id)
        await router.follows.unfollow("cat", "bob")
        await cluster.settle(router)
        for _ in range(3):
            [p async for p in cluster.nodes["n1"].repairer.repair(list(range(16)))]
        assert all(tombstones_on(node.data) >= 3 for node in cluster.nodes.values())
        await cluster.close()

    asyncio.run(scenario())


def test_a_node_away_longer_than_gc_grace_is_refused_and_told_how_to_rejoin() -> None:
    store = MemoryStore()
    heartbeat.check_not_away_too_long(store, "n1", "/data/n1", GRACE_S)  # a new store: no heartbeat
    heartbeat.beat(store, wall=lambda: 1_000.0)
    heartbeat.check_not_away_too_long(store, "n1", "/data/n1", GRACE_S, wall=lambda: 1_000.0 + GRACE_S / 2)
    with pytest.raises(heartbeat.AwayTooLongError) as refused:
        heartbeat.check_not_away_too_long(store, "n1", "/data/n1", GRACE_S, wall=lambda: 1_000.0 + 2 * GRACE_S)
    message = str(refused.value)
    assert "gc_grace" in message and "feedring node remove n1 --dead" in message and "/data/n1" in message


def test_hints_must_expire_before_tombstones_do(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    base = '[cluster]\nname = "t"\n\n[[nodes]]\nid = "n1"\naddress = "127.0.0.1:7101"\ndata_dir = "d"\n'
    base += '\n[[routers]]\nid = 0\naddress = "127.0.0.1:7001"\n'
    path.write_text(base + '\n[replication]\ngc_grace = "2h"\nmax_hint_age = "3h"\n')
    with pytest.raises(ConfigError, match="max_hint_age must be more than 0 and less than gc_grace"):
        load(path)
    path.write_text(base + '\n[replication]\ngc_grace = "1d"\n')
    assert load(path).replication.gc_grace_s == 86400.0
