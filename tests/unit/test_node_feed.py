"""A node's Feed API (node/feed_api.py) on the in-memory twin: a read of a key the node holds makes
no storage RPC at all; one of a key it does not hold makes exactly the RPCs a router makes; the hot
merge and paging answer what a router answers; post ids come from the node's generator in the map;
and the client's routing table sends each call to a replica of its key."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from client.routing import KEY_FIELD, RoutingTable, Spread
from common import post_bytes
from common.cluster_map import initial_map
from common.errors import Unavailable
from feed.flows import FeedFlows
from feed.post_ids import created_at_ms
from feed.routing_map import routing_map
from node.feed_api import MemberPostIds, feed_flows
from protos import feed_pb2
from tests.inmem_cluster import InmemCluster, make_config

HOT = {"follower_threshold": 5, "cooldown_ratio": 0.5, "salt_buckets": 4, "cache_ttl_ms": 0}


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def user_held_by(cluster: InmemCluster, node_id: str, *, held: bool, prefix: str = "u") -> str:
    return next(f"{prefix}{i}" for i in range(10_000) if (node_id in replicas(cluster, f"{prefix}{i}")) == held)


def replicas(cluster: InmemCluster, key: str) -> tuple[str, ...]:
    node = next(iter(cluster.nodes.values()))
    return node.ownership.map.replicas(node.data.partition(key))


async def texts(flows: FeedFlows, user: str, limit: int = 50, before: int = 0) -> list[str]:
    return [p.text for p in post_bytes.decode(await flows.timeline.read(user, limit, before))]


def test_a_node_reads_a_timeline_it_holds_with_no_storage_rpc() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3, partitions=32))
        router = cluster.router()
        reader = user_held_by(cluster, "n1", held=True)
        await router.follows.follow(reader, "bob")
        await router.posts.post("bob", "one hop")
        await cluster.settle(router)
        node_feed = feed_flows(cluster.config, cluster.nodes["n1"])
        before = Counter(cluster.transport.calls)
        assert await texts(node_feed, reader) == ["one hop"]
        assert cluster.transport.calls == before  # read from its own store, in process
        await cluster.close()

    run(scenario)


def test_a_node_reads_a_timeline_it_does_not_hold_with_the_rpcs_a_router_makes() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3, partitions=32))
        router = cluster.router()
        reader = user_held_by(cluster, "n1", held=False)
        await router.follows.follow(reader, "bob")
        await router.posts.post("bob", "two hops")
        await cluster.settle(router)

        async def calls_of(flows: FeedFlows) -> Counter[str]:
            before = Counter(cluster.transport.calls)
            assert await texts(flows, reader) == ["two hops"]
            return Counter({m: n for (_, m), n in (cluster.transport.calls - before).items()})

        assert await calls_of(feed_flows(cluster.config, cluster.nodes["n1"])) == await calls_of(router)
        await cluster.close()

    run(scenario)


def test_hot_merge_and_paging_on_a_node_answer_what_a_router_answers() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3, partitions=32, **HOT))
        router = cluster.router()
        fans = [f"fan{i}" for i in range(6)]
        for fan in fans:
            await router.follows.follow(fan, "star")
            await router.follows.follow(fan, "plain")
        await cluster.settle(router)
        for i in range(7):
            await router.posts.post("star", f"hot {i}")
            await router.posts.post("plain", f"plain {i}")
        await cluster.settle(router)
        for node_id in cluster.nodes:
            node_feed = feed_flows(cluster.config, cluster.nodes[node_id])
            await node_feed.hot.refresh()
            for fan in fans:
                assert await texts(node_feed, fan) == await texts(router, fan)
                # Paging: below the fourth newest, three at a time, across the merge.
                fourth = post_bytes.post_id((await node_feed.timeline.read(fan, 4, 0))[-1])
                assert await texts(node_feed, fan, 3, fourth) == await texts(router, fan, 3, fourth)
        await cluster.close()

    run(scenario)


def test_a_node_posts_with_its_own_generator_and_a_retried_request_is_stored_once() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3, partitions=32))
        node = cluster.nodes["n2"]
        node_feed = feed_flows(cluster.config, node)
        first = await node_feed.posts.post("bob", "once", request_id="r-1")
        assert (first.id >> 12) & 1023 == node.ownership.map.generator("n2") == 513
        router = cluster.router()
        again = await router.posts.post("bob", "once", request_id="r-1")  # the retry, elsewhere
        assert again.id == first.id and again.created_at_ms == created_at_ms(first.id)
        assert [p.text for p in await router.reads.posts("bob", router.hot.state("bob"), 10)] == ["once"]
        await cluster.close()

    run(scenario)


def test_a_node_that_is_not_a_member_yet_assigns_no_post_ids() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=2, partitions=16))
        newcomer = cluster.start_node("n9")
        with pytest.raises(Unavailable, match="not a member"):
            MemberPostIds(newcomer).next_id()
        await cluster.close()

    run(scenario)


def test_the_routing_table_sends_each_call_to_a_replica_of_its_key() -> None:
    seeded = initial_map(make_config(nodes=3, partitions=32, replication_factor=2))
    feed_addresses = {m.id: f"{m.id}.feed:1" for m in seeded.members}
    cluster_map = replace(seeded, members=tuple(replace(m, feed_address=feed_addresses[m.id]) for m in seeded.members))
    table = RoutingTable.from_proto(feed_pb2.RoutingMap.FromString(routing_map(cluster_map).SerializeToString()))
    for key in (f"user{i}" for i in range(50)):
        expected = [feed_addresses[n] for n in cluster_map.replicas(cluster_map.partition(key))]
        assert table.replicas(key) == expected
    spread = Spread(salt=1)
    spread.started()  # a call in flight: reads spread by key
    firsts = {spread.order(f"user{i}", table.replicas(f"user{i}"), spread=True)[0] for i in range(50)}
    assert len(firsts) == 3  # reads of different keys spread over every node
    assert spread.order("user1", table.replicas("user1"), True) == spread.order("user1", table.replicas("user1"), True)
    assert spread.order("user1", table.replicas("user1"), spread=False) == table.replicas("user1")
    assert set(KEY_FIELD) == {m.name for m in feed_pb2.DESCRIPTOR.services_by_name["Feed"].methods} - {"GetRoutingMap"}


def test_a_client_with_nothing_in_flight_reads_from_the_node_it_prefers() -> None:
    replicas = ["n1.feed:1", "n2.feed:1", "n3.feed:1"]
    spread = Spread(salt=1)
    preferred = spread.order("alice", replicas, spread=True)[0]
    # One call at a time: every key's read goes to the same node (warm between calls).
    assert {spread.order(f"user{i}", replicas[i % 3 :] + replicas[: i % 3], True)[0] for i in range(30)} == {preferred}
    # Other clients prefer other nodes.
    assert {Spread(salt=s).order("alice", replicas, spread=True)[0] for s in range(30)} == set(replicas)
    # A call in flight: reads spread by key; once it ended, back to the preferred node.
    with spread.sending():
        assert {spread.order(f"user{i}", replicas, spread=True)[0] for i in range(30)} == set(replicas)
    assert not spread.outstanding and spread.order("bob", replicas, spread=True)[0] == preferred
