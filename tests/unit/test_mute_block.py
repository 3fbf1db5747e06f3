"""Mute and block on the in-memory twin: every rule of feed.proto's Mute/Block, for normal and hot
authors, in reads, newer-than reads and the live stream; a block racing a follow; and a property
test of random follows, mutes, blocks, posts and deletes against a simple model."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.results import Post
from client.watching import WatchCursor
from common import post_bytes
from common.errors import FailedPrecondition
from common.hot_state import HotState
from protos import storage_pb2
from router.flows import RouterFlows
from tests.inmem_cluster import InmemCluster, make_config
from tests.unit.test_timeline_features import HOT, Watcher, hot_star_and_reader


async def ids(router: RouterFlows, user: str, after_id: int = 0) -> list[int]:
    return [p.id for p in post_bytes.decode(await router.timeline.read(user, 100, 0, after_id))]


async def listed(router: RouterFlows, user: str, direction: storage_pb2.EdgeDirection) -> list[str]:
    return await router.relations.listed(user, direction, "", 100)


async def following(router: RouterFlows, user: str) -> list[str]:
    return await listed(router, user, storage_pb2.FOLLOWING)


async def followers(router: RouterFlows, user: str) -> list[str]:
    return await router.reads.followers(user, router.hot.state(user), "", 100)


def test_a_mute_hides_past_and_future_posts_of_normal_and_hot_authors_and_unmute_brings_them_back() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**HOT))
        router = cluster.router()
        await hot_star_and_reader(cluster, router)
        past = [(await router.posts.post(a, f"past {a}")).id for a in ("plain", "star")]
        await cluster.settle(router)
        assert await router.relations.mute("reader", "plain", True)
        assert await router.relations.mute("reader", "star", True)
        assert not await router.relations.mute("reader", "star", True)  # idempotent
        future = [(await router.posts.post(a, f"future {a}")).id for a in ("plain", "star")]
        own = (await router.posts.post("reader", "mine")).id
        await cluster.settle(router)
        assert await ids(router, "reader") == [own]
        assert await ids(router, "reader", after_id=past[0]) == [own]  # newer-than reads too
        assert await following(router, "reader") == ["plain", "star"]  # the follows stay
        assert await listed(router, "reader", storage_pb2.MUTED) == ["plain", "star"]
        assert await router.relations.mute("reader", "plain", False)
        assert await ids(router, "reader") == [own, future[0], past[0]]  # the past ones come back
        assert await listed(router, "reader", storage_pb2.MUTED) == ["star"]

    asyncio.run(scenario())


def test_a_watch_never_sends_a_muted_authors_posts() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**HOT))
        router = cluster.router()
        await hot_star_and_reader(cluster, router)
        await router.follows.follow("reader", "quiet")
        await router.relations.mute("reader", "quiet", True)
        await router.relations.mute("reader", "star", True)
        anchor = (await router.posts.post("plain", "anchor")).id
        await cluster.settle(router)
        watcher = Watcher(cluster, "reader", WatchCursor(anchor))
        await asyncio.sleep(0.05)
        hidden = [(await router.posts.post(a, "hidden")).id for a in ("quiet", "star")]
        shown = (await router.posts.post("plain", "shown")).id
        await cluster.settle(router)
        got = await watcher.until(1)
        await asyncio.sleep(1.2)  # a hot followee is checked each second: give it one
        assert [p.id for p in watcher.got if isinstance(p, Post)] == [shown] == [p.id for p in got]
        assert not set(hidden) & set(watcher.raw_ids)
        await watcher.close()

    asyncio.run(scenario())


def test_a_block_removes_both_follows_refuses_new_ones_and_hides_both_ways_until_unblocked() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**HOT))
        router = cluster.router()
        await hot_star_and_reader(cluster, router)
        await router.follows.follow("star", "reader")  # both ways, one of them hot
        old = {a: (await router.posts.post(a, "before")).id for a in ("star", "reader")}
        await cluster.settle(router)
        assert old["star"] in await ids(router, "reader") and old["reader"] in await ids(router, "star")
        assert await router.relations.block("reader", "star")
        assert not await router.relations.block("reader", "star")
        assert "star" not in await following(router, "reader") and "reader" not in await following(router, "star")
        assert "reader" not in await followers(router, "star")
        with pytest.raises(FailedPrecondition, match="you have blocked star"):
            await router.follows.follow("reader", "star")
        with pytest.raises(FailedPrecondition, match="reader has blocked you"):
            await router.follows.follow("star", "reader")
        new = {a: (await router.posts.post(a, "after")).id for a in ("star", "reader")}
        await cluster.settle(router)
        assert await ids(router, "reader") == [new["reader"], old["reader"]]  # its own only
        assert await ids(router, "star") == [new["star"], old["star"]]
        assert await listed(router, "reader", storage_pb2.BLOCKED) == ["star"]
        assert await listed(router, "star", storage_pb2.BLOCKED) == []
        assert await router.relations.unblock("reader", "star")
        assert "star" not in await following(router, "reader")  # the follows are not restored
        await router.follows.follow("reader", "star")  # and may be made again
        assert new["star"] in await ids(router, "reader")

    asyncio.run(scenario())


def test_a_block_blocks_a_follow_by_either_side_whatever_the_other_did_first() -> None:
    """A block racing a follow from the other side, at every interleaving the scheduler offers: the
    follow is refused or undone, and no edge is left on either side."""

    async def scenario() -> None:
        cluster = InmemCluster(make_config(replication_factor=3))
        router = cluster.router()

        async def later(steps: int, work: object) -> object:
            for _ in range(steps):
                await asyncio.sleep(0)
            return await work  # type: ignore[misc]

        outcomes = set()
        for delay in range(12):
            a, b = f"a{delay}", f"b{delay}"
            block = router.relations.block(a, b)
            follow = later(delay, router.follows.follow(b, a))
            _, followed = await asyncio.gather(block, follow, return_exceptions=True)
            outcomes.add(type(followed).__name__)
            await cluster.settle(router)
            assert a not in await following(router, b) and b not in await followers(router, a), delay
            with pytest.raises(FailedPrecondition, match=f"{a} has blocked you"):
                await router.follows.follow(b, a)
        assert "FailedPrecondition" in outcomes  # the race was run, not only one side of it

    asyncio.run(scenario())


def test_relations_are_replicated_like_edges_and_survive_a_replica_down() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(replication_factor=3))
        router = cluster.router()
        await router.follows.follow("reader", "plain")
        await router.relations.mute("reader", "plain", True)
        await router.relations.block("reader", "troll")
        for node_id in sorted(cluster.nodes):
            node = cluster.nodes[node_id]
            assert node.data.relations.hidden_from("reader") == {b"plain", b"troll"}, node_id
            assert node.data.relations.hidden_from("troll") == {b"reader"}, node_id
        cluster.down(router.storage.replicas_for("reader")[0])  # its primary
        await cluster.probe()
        post = await router.posts.post("plain", "hidden still")
        await cluster.settle(router)
        assert post.id not in await ids(router, "reader")
        with pytest.raises(FailedPrecondition):
            await router.follows.follow("troll", "reader")

    asyncio.run(scenario())


# -- a property test against a model -------------------------------------------------------------

USERS = ["u0", "u1", "u2", "u3"]
user = st.sampled_from(USERS)
op = st.one_of(
    st.tuples(st.just("follow"), user, user),
    st.tuples(st.just("unfollow"), user, user),
    st.tuples(st.just("mute"), user, user),
    st.tuples(st.just("unmute"), user, user),
    st.tuples(st.just("block"), user, user),
    st.tuples(st.just("unblock"), user, user),
    st.tuples(st.just("post"), user, user),
    st.tuples(st.just("delete"), user, st.integers(0, 20)),
)


@dataclass
class Model:
    """What feed.proto promises, in a few sets."""

    follows: set[tuple[str, str]] = field(default_factory=set)
    mutes: set[tuple[str, str]] = field(default_factory=set)
    blocks: set[tuple[str, str]] = field(default_factory=set)
    posts: dict[int, str] = field(default_factory=dict)  # live post id -> author

    def blocked(self, a: str, b: str) -> bool:
        return (a, b) in self.blocks or (b, a) in self.blocks

    def timeline(self, reader: str) -> list[int]:
        def shown(author: str) -> bool:
            if author == reader:
                return True
            return (
                (reader, author) in self.follows
                and (reader, author) not in self.mutes
                and not self.blocked(reader, author)
            )

        return sorted((i for i, a in self.posts.items() if shown(a)), reverse=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=30))
def test_every_timeline_equals_the_models_after_random_follows_mutes_blocks_posts_and_deletes(ops: list) -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=2, partitions=16))
        router = cluster.router()
        model = Model()
        made: list[int] = []
        for kind, a, b in ops:
            if kind == "post":
                made.append(post_id := (await router.posts.post(a, "x")).id)
                model.posts[post_id] = a
            elif kind == "delete":
                if made:
                    post_id = made[b % len(made)]
                    if model.posts.get(post_id) == a:
                        await router.posts.delete(a, post_id)
                        del model.posts[post_id]
            elif a == b:
                continue
            elif kind == "follow":
                if model.blocked(a, b):
                    with pytest.raises(FailedPrecondition):
                        await router.follows.follow(a, b)
                else:
                    await router.follows.follow(a, b)
                    model.follows.add((a, b))
            elif kind == "unfollow":
                await router.follows.unfollow(a, b)
                model.follows.discard((a, b))
            elif kind in ("mute", "unmute"):
                await router.relations.mute(a, b, kind == "mute")
                (model.mutes.add if kind == "mute" else model.mutes.discard)((a, b))
            elif kind == "block":
                await router.relations.block(a, b)
                model.blocks.add((a, b))
                model.follows -= {(a, b), (b, a)}
            else:
                await router.relations.unblock(a, b)
                model.blocks.discard((a, b))
            await cluster.settle(router)
        for reader in USERS:
            assert await ids(router, reader) == model.timeline(reader), reader
            assert router.hot.state(reader) is HotState.NORMAL

    asyncio.run(scenario())
