"""Every router flow against the in-memory cluster twin: real node servicers, no processes, milliseconds.

What each test asserts is what a user (or an operator) would check: timelines, counts, who is hot,
and how many calls a user action costs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from common import post_bytes, salting
from common.errors import FailedPrecondition, NotFound, Unavailable
from common.hot_state import HotState
from node import keys
from node.feed_api import feed_flows
from protos import admin_pb2, feed_pb2, storage_pb2
from router.flows import RouterFlows
from router.membership_plan import Kind
from tests.inmem_cluster import InmemCluster, make_config


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


async def timeline(router: RouterFlows, user: str, limit: int = 100, before_id: int = 0) -> list[feed_pb2.Post]:
    return post_bytes.decode(await router.timeline.read(user, limit, before_id))


async def texts(router: RouterFlows, user: str) -> list[str]:
    return [p.text for p in await timeline(router, user)]


# -- posts and fan-out -------------------------------------------------------------------------------


def test_a_post_reaches_every_follower_with_one_inbox_batch_per_node() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3))
        router = cluster.router()
        fans = [f"fan{i}" for i in range(40)]
        for fan in fans:
            await router.follows.follow(fan, "author")
        before = cluster.transport.count("ApplyWrites")
        post = await router.posts.post("author", "hello")
        await cluster.settle(router)
        for fan in fans:
            assert [p.id for p in await timeline(router, fan)] == [post.id]
        assert cluster.transport.count("StorePost") == 1
        # The author's node writes its own share and sends one batch per other node per page of
        # followers (the twin's pages are 16), never one per fan.
        assert cluster.transport.count("ApplyWrites") - before <= 3 * 2
        assert sum(n.delivery.metrics.inbox_writes for n in cluster.nodes.values()) == 40

    run(scenario)


def test_a_deleted_post_leaves_every_timeline_and_a_second_delete_is_not_found() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config())
        router = cluster.router()
        await router.follows.follow("ann", "bob")
        keep = await router.posts.post("bob", "keep")
        gone = await router.posts.post("bob", "gone")
        await cluster.settle(router)
        await router.posts.delete("bob", gone.id)
        await cluster.settle(router)
        assert [p.id for p in await timeline(router, "ann")] == [keep.id]
        with pytest.raises(NotFound, match=f"bob has no post {gone.id}"):
            await router.posts.delete("bob", gone.id)

    run(scenario)


def test_delivery_waits_for_a_node_that_is_down_and_completes_when_it_is_back() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config())
        router = cluster.router()
        fans = [f"fan{i}" for i in range(12)]
        for fan in fans:
            await router.follows.follow(fan, "author")
        victim = cluster.holder_of(fans[0])
        cluster.down(victim)
        post = await router.posts.post("author", "while down")
        await asyncio.sleep(0.1)  # the first attempts fail and back off
        assert cluster.outstanding() == 1  # the record waits, on "disk"
        cluster.up(victim)
        await cluster.settle(router)
        for fan in fans:
            assert post.id in [p.id for p in await timeline(router, fan)]
        assert sum(n.delivery.metrics.retries for n in cluster.nodes.values()) >= 1

    run(scenario)


# -- follows ---------------------------------------------------------------------------------------


def test_follow_backfills_unfollow_purges_and_counts_stay_exact() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config())
        router = cluster.router()
        old = await router.posts.post("bob", "before the follow")
        assert await router.follows.follow("ann", "bob") is True
        assert await router.follows.follow("ann", "bob") is False  # idempotent
        assert [p.id for p in await timeline(router, "ann")] == [old.id]
        followers = await router.reads.followers("bob", HotState.NORMAL, "", 10)
        assert followers == ["ann"]
        assert await router.follows.unfollow("ann", "bob") is True
        assert await router.follows.unfollow("ann", "bob") is False
        assert await timeline(router, "ann") == []
        assert await router.reads.followers("bob", HotState.NORMAL, "", 10) == []

    run(scenario)


def test_a_call_to_a_down_node_names_it_and_keeps_the_grpc_cause() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config())
        router = cluster.router()
        victim = cluster.holder_of("ann")
        cluster.down(victim)
        with pytest.raises(Unavailable, match=f"node {victim} \\({victim}.mem:1\\) is unavailable") as err:
            await timeline(router, "ann")
        assert err.value.__cause__ is not None  # raised from the gRPC error, not `from None`

    run(scenario)


# -- hot users -------------------------------------------------------------------------------------

HOT = {"follower_threshold": 5, "cooldown_ratio": 0.5, "salt_buckets": 4, "cache_ttl_ms": 0}


async def make_star_hot(cluster: InmemCluster, router: RouterFlows) -> list[str]:
    """Six fans follow "star": over the threshold of 5, so it turns hot."""
    fans = [f"fan{i}" for i in range(6)]
    for fan in fans:
        await router.follows.follow(fan, "star")
    await cluster.settle(router)
    assert router.hot.state("star") is HotState.HOT
    return fans


async def cool_star_down(cluster: InmemCluster, router: RouterFlows, fans: list[str]) -> None:
    """Four fans leave: two stay, below 5 x 0.5, so it cools down and fan4's and fan5's inboxes
    get copies of its recent posts."""
    for fan in fans[:4]:
        await router.follows.unfollow(fan, "star")
    await cluster.settle(router)
    assert router.hot.state("star") is HotState.COLD


def test_a_user_turns_hot_posts_are_merged_at_read_then_cools_and_posts_are_copied() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**HOT))
        router = cluster.router()
        fans = await make_star_hot(cluster, router)
        inbox_calls = cluster.transport.count("InsertInbox")
        hot_post = await router.posts.post("star", "salted")
        await cluster.settle(router)
        assert cluster.transport.count("InsertInbox") == inbox_calls  # not fanned out
        for fan in fans:
            assert [p.id for p in await timeline(router, fan)] == [hot_post.id]  # merged at read
        await cool_star_down(cluster, router, fans)
        for fan in fans[4:]:
            assert [p.id for p in await timeline(router, fan)] == [hot_post.id]
            holder = cluster.nodes[cluster.holder_of(fan)].data
            assert holder.graph.merged_at_read(fan) == []  # no merge mark left
            assert len(holder.inboxes.read(fan, 10)) == 1  # a real inbox copy
        cold_post = await router.posts.post("star", "fanned out again")
        await cluster.settle(router)
        assert [p.text for p in await timeline(router, fans[5])] == ["fanned out again", "salted"]
        assert cold_post.id > hot_post.id

    run(scenario)


def test_a_hot_authors_post_lands_on_its_salted_key_and_a_fresh_router_learns_the_state() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**HOT))
        router = cluster.router()
        for i in range(5):
            await router.follows.follow(f"fan{i}", "star")
        await cluster.settle(router)
        post = await router.posts.post("star", "x")
        key = salting.post_key("star", post.id, 4)
        assert cluster.nodes[cluster.holder_of(key)].data.posts.read_posts(key, 5) != []
        fresh = cluster.router()
        await fresh.hot.refresh()
        assert fresh.hot.state("star") is HotState.HOT and fresh.hot.hot_now() == ["star"]
        page = await fresh.reads.posts("star", HotState.HOT, 10)
        assert [p.id for p in page] == [post.id]

    run(scenario)


def test_a_hot_authors_post_retried_elsewhere_is_stored_once_and_deletes() -> None:
    # A client retrying through another router or node sends the same request id; that coordinator
    # gives the post a new id. Salting by the id alone put 3 in 4 retries (4 buckets) on another
    # key, where no record of the request was: the celebrity's post showed twice.
    async def scenario() -> None:
        cluster = InmemCluster(make_config(replication_factor=3, **HOT))
        router = cluster.router()
        fans = await make_star_hot(cluster, router)
        firsts = []
        for i in range(12):
            first = await router.posts.post("star", f"once {i}", request_id=f"req-{i}")
            elsewhere = cluster.router()
            await elsewhere.hot.refresh()
            assert elsewhere.hot.state("star") is HotState.HOT
            again = await elsewhere.posts.post("star", f"once {i}", request_id=f"req-{i}")
            assert again.id == first.id, i
            firsts.append(first)
        assert await texts(router, fans[0]) == [f"once {i}" for i in reversed(range(12))]
        buckets = {salting.post_key("star", p.id, HOT["salt_buckets"]) for p in firsts}
        assert len(buckets) > 1  # still spread over the salted keys
        await router.posts.delete("star", firsts[3].id)
        assert "once 3" not in await texts(router, fans[0])
        await cluster.close()

    run(scenario)


def test_timeline_pages_are_exact_across_the_inbox_and_two_hot_authors() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**HOT))
        router = cluster.router()
        for star in ("star1", "star2"):
            for i in range(5):
                await router.follows.follow(f"{star}-fan{i}", star)
            await router.follows.follow("reader", star)
        await router.follows.follow("reader", "plain")
        await cluster.settle(router)
        made = []
        for i in range(15):
            author = ("star1", "star2", "plain")[i % 3]
            made.append((await router.posts.post(author, f"p{i}")).id)
        await cluster.settle(router)
        seen: list[int] = []
        before = 0
        while True:
            page = await timeline(router, "reader", 4, before)
            if not page:
                break
            seen += [p.id for p in page]
            before = page[-1].id
        assert seen == sorted(made, reverse=True)

    run(scenario)


def test_a_cache_miss_counts_one_miss_and_no_hit() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(follower_threshold=5, salt_buckets=4, cache_ttl_ms=60_000))
        router = cluster.router()
        for i in range(5):
            await router.follows.follow(f"fan{i}", "star")
        await cluster.settle(router)
        await router.posts.post("star", "x")
        router.cache.hits = router.cache.misses = 0
        router.cache._entries.clear()
        await router.timeline.recent_posts("star", 10, 0)
        assert (router.cache.hits, router.cache.misses) == (0, 1)
        await router.timeline.recent_posts("star", 10, 0)
        assert (router.cache.hits, router.cache.misses) == (1, 1)

    run(scenario)


# -- bulk loads ------------------------------------------------------------------------------------


def test_bulk_follow_loads_edges_counts_once_and_turns_a_followee_hot() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**HOT))
        router = cluster.router()
        edges = [(f"fan{i}", "star") for i in range(8)] + [("fan0", "plain")]
        assert await router.bulk.follow_many(edges) == 9
        assert await router.bulk.follow_many(edges) == 0  # a reload changes nothing
        await cluster.settle(router)
        assert router.hot.state("star") is HotState.HOT
        assert len(await router.reads.followers("star", HotState.HOT, "", 100)) == 8
        post = await router.posts.post("star", "to all")
        assert [p.id for p in await timeline(router, "fan7")] == [post.id]

    run(scenario)


# -- the storage client ----------------------------------------------------------------------------


def test_a_router_with_a_stale_map_follows_the_new_owner_invisibly() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config())
        router = cluster.router()
        stale = cluster.router()  # keeps epoch 1 while the other adds a node
        for i in range(30):
            await router.posts.post(f"user{i}", "before the move")
        cluster.start_node("n4")
        phases = await add_node(router, "n4")
        assert phases[0] == "PLANNED" and phases[-1] == "DONE"
        assert router.storage.map.epoch == 3 and stale.storage.map.epoch == 1
        moved = [f"user{i}" for i in range(30) if cluster.holder_of(f"user{i}") == "n4"]
        assert moved  # about a quarter of the users
        for user in moved:
            assert [p.text for p in await stale.reads.posts(user, HotState.NORMAL, 5)] == ["before the move"]
        assert stale.storage.map.epoch == 3

    run(scenario)


def test_a_node_that_missed_a_map_hears_of_it_from_a_caller_with_a_newer_epoch() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config())
        router = cluster.router()
        lagging = cluster.nodes["n1"]
        lagging.ownership._set(replace(router.storage.map, epoch=0))  # as if it had missed epoch 1
        owned = next(f"user{i}" for i in range(100) if cluster.holder_of(f"user{i}") == "n1")
        await router.reads.posts(owned, HotState.NORMAL, 5)  # carries epoch 1
        for _ in range(10):
            await asyncio.sleep(0)  # the catch-up runs in the background
        assert lagging.ownership.map.epoch == 1  # learnt from its peers
        assert cluster.nodes["n2"].ownership.map.epoch == 1

    run(scenario)


# -- membership ------------------------------------------------------------------------------------


async def add_node(router: RouterFlows, node_id: str) -> list[str]:
    request = admin_pb2.ChangeMembershipRequest(kind=Kind.ADD, node_id=node_id, address=f"{node_id}.mem:1")
    return [progress.phase async for progress in router.membership.request(request)]


def test_adding_a_node_moves_its_share_and_loses_nothing() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config())
        router = cluster.router()
        for i in range(20):
            await router.follows.follow(f"reader{i}", f"author{i % 5}")
        posts = {f"author{i}": (await router.posts.post(f"author{i}", "x")).id for i in range(5)}
        await cluster.settle(router)
        cluster.start_node("n4")
        assert (await add_node(router, "n4"))[-1] == "DONE"
        assert {m.id for m in router.storage.map.members} == {"n1", "n2", "n3", "n4"}
        assert any(cluster.holder_of(f"reader{i}") == "n4" for i in range(20))
        for i in range(20):
            assert [p.id for p in await timeline(router, f"reader{i}")] == [posts[f"author{i % 5}"]]
        # The old owners dropped what moved: every key is held exactly once (holder_of asserts it).
        for i in range(20):
            cluster.holder_of(f"reader{i}")

    run(scenario)


def test_a_removed_node_learns_it_holds_nothing_and_its_feed_api_still_answers_right() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3, replication_factor=1))
        router = cluster.router()
        reader = next(f"reader{i}" for i in range(100) if cluster.holder_of(f"reader{i}") == "n2")
        await router.follows.follow(reader, "author")
        post = await router.posts.post("author", "kept through the removal")
        await cluster.settle(router)
        request = admin_pb2.ChangeMembershipRequest(kind=Kind.REMOVE, node_id="n2")
        assert [p.phase async for p in router.membership.request(request)][-1] == "DONE"
        removed = cluster.nodes["n2"]
        assert removed.ownership.map.epoch == router.storage.map.epoch and not removed.ownership.owned
        assert list(removed.store.scan_keys(keys.partition_prefix(removed.data.partition(reader)))) == []  # dropped
        # A client whose map still names n2 reads through it: n2 forwards to the key's new owner.
        through_n2 = feed_flows(cluster.config, removed)
        assert [p.id for p in post_bytes.decode(await through_n2.timeline.read(reader, 10, 0))] == [post.id]

    run(scenario)


def test_a_membership_change_refuses_what_cannot_work() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=1))
        router = cluster.router()
        with pytest.raises(FailedPrecondition, match="last node"):
            await add_remove(router, Kind.REMOVE, "n1")
        with pytest.raises(NotFound, match="not a member"):
            await add_remove(router, Kind.REMOVE, "n9")
        with pytest.raises(Unavailable, match="start it first"):
            await add_remove(router, Kind.ADD, "n5", "n5.mem:1")  # no such process

    run(scenario)


async def add_remove(router: RouterFlows, kind: int, node_id: str, address: str = "") -> None:
    request = admin_pb2.ChangeMembershipRequest(kind=kind, node_id=node_id, address=address)
    async for _ in router.membership.request(request):
        pass


# -- durable delivery (node/delivery.py) -----------------------------------------------------------


def test_a_node_restarted_mid_delivery_resumes_from_its_checkpoint_and_shows_nothing_twice() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config())
        router = cluster.router()
        author_node = router.storage.node_for("author")
        blocked = next(n for n in cluster.nodes if n != author_node)
        # The first page (16, in byte order) has no follower on `blocked`; later pages do.
        first = [f for f in (f"a{i:03d}" for i in range(200)) if router.storage.node_for(f) != blocked][:16]
        fans = first + [f"b{i:03d}" for i in range(84)]
        await router.bulk.follow_many([(fan, "author") for fan in fans])
        cluster.down(blocked)  # delivery gets one page in, then waits for this node
        post = await router.posts.post("author", "durable")
        log = cluster.nodes[author_node].delivery.log
        for _ in range(200):
            await asyncio.sleep(0.01)
            pending = log.pending(cluster.nodes[author_node].ownership.owned, 10)
            if pending and pending[0][1].after:
                break
        assert pending and pending[0][1].after, "no checkpoint written"
        restarted = cluster.restart(author_node)  # a new process over the same store
        assert restarted.delivery.log.count() == 1
        cluster.up(blocked)
        await cluster.settle(router)
        for fan in fans:
            assert [p.id for p in await timeline(router, fan)] == [post.id]

    run(scenario)


def test_a_delete_removes_every_copy_even_when_it_was_made_by_a_cool_down_in_an_earlier_hot_period() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**HOT))
        router = cluster.router()
        fans = await make_star_hot(cluster, router)
        hot_post = await router.posts.post("star", "stored salted")
        await cool_star_down(cluster, router, fans)  # the post is copied into fan4's and fan5's inboxes
        for fan in fans[:4]:
            await router.follows.follow(fan, "star")
        await cluster.settle(router)  # hot again
        assert router.hot.state("star") is HotState.HOT
        await router.posts.delete("star", hot_post.id)
        await cluster.settle(router)
        for fan in fans:
            assert await timeline(router, fan) == []

    run(scenario)


def test_a_post_stored_salted_by_a_router_that_missed_a_cool_down_still_reaches_every_follower() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**HOT))
        router = cluster.router()
        fans = await make_star_hot(cluster, router)
        stale = cluster.router()
        stale.hot.learn("star", HotState.HOT)  # this router saw it hot, and will not poll
        await cool_star_down(cluster, router, fans)
        assert stale.hot.state("star") is HotState.HOT
        late = await stale.posts.post("star", "stored salted after the cool-down")
        await cluster.settle(router)
        for fan in fans[4:]:
            assert [p.id for p in await timeline(router, fan)] == [late.id]
            holder = cluster.nodes[cluster.holder_of(fan)].data
            assert holder.graph.merged_at_read(fan) == [] and len(holder.inboxes.read(fan, 10)) == 1  # delivered

    run(scenario)


def test_deliveries_owed_when_a_node_joins_move_with_their_partition_and_finish() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config())
        router = cluster.router()
        victim = cluster.holder_of("fan0")
        authors = [a for a in (f"author{i}" for i in range(40)) if router.storage.node_for(a) != victim][:12]
        edges = [(f"fan{i}", author) for author in authors for i in range(20)]
        await router.bulk.follow_many(edges)
        cluster.down(victim)  # nothing for its inboxes can be delivered yet
        posts = {author: (await router.posts.post(author, "owed")).id for author in authors}
        await asyncio.sleep(0.05)
        cluster.up(victim)
        cluster.start_node("n4")
        assert (await add_node(router, "n4"))[-1] == "DONE"
        await cluster.settle(router)
        for i in range(20):  # every fan follows every author
            assert [p.id for p in await timeline(router, f"fan{i}")] == sorted(posts.values(), reverse=True)

    run(scenario)


def test_a_follow_of_a_salted_user_retried_after_failing_midway_counts_exactly_once() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**{**HOT, "follower_threshold": 50}))
        router = cluster.router()
        await router.bulk.follow_many([(f"fan{i}", "star") for i in range(50)])
        await cluster.settle(router)
        assert router.hot.state("star") is HotState.HOT
        # A follower whose own node is not the one holding its salted edge of star.
        node_for, salted = router.storage.node_for, salting.follower_key
        late = next(f"late{i}" for i in range(100) if node_for(f"late{i}") != node_for(salted("star", f"late{i}", 4)))
        salted_node = router.storage.node_for(salting.follower_key("star", late, 4))
        cluster.down(salted_node)  # the follower-side edge is written, the followee-side one fails
        with pytest.raises(Unavailable):
            await router.follows.follow(late, "star")
        cluster.up(salted_node)
        assert await router.follows.follow(late, "star") is True  # the retry completes the follow
        assert await router.follows.follow(late, "star") is False
        await cluster.settle(router)
        meta = await router.storage.get_user_meta.by_key("star", storage_pb2.GetUserMetaRequest(user_key="star"))
        assert meta.follower_count == 51
        assert len(await router.reads.followers("star", HotState.HOT, "", 100)) == 51
        await router.follows.unfollow(late, "star")
        await cluster.settle(router)
        meta = await router.storage.get_user_meta.by_key("star", storage_pb2.GetUserMetaRequest(user_key="star"))
        assert meta.follower_count == 50

    run(scenario)
