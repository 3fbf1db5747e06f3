"""Readers who went away, on the in-memory twin: fan-out skips them, their first read back rebuilds
an exact timeline (compared with a twin cluster where nobody is ever inactive), a rebuild that
cannot finish fails the read rather than answer part of a timeline, and who is inactive is
replicated with the partition."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from common import post_bytes
from common.config import Fanout
from common.errors import FeedringError
from router.flows import RouterFlows
from tests.inmem_cluster import InmemCluster, make_config
from tests.unit.test_timeline_features import HOT

AWAY_S = 1.0


def cluster_with(inactive_after_s: float, replication_factor: int = 1, **hot: object) -> InmemCluster:
    config = make_config(replication_factor=replication_factor, **hot)
    return InmemCluster(dataclasses.replace(config, fanout=Fanout(inactive_after_s=inactive_after_s)))


async def sweep(cluster: InmemCluster) -> int:
    return sum([await node.sweeper.sweep() for node in cluster.nodes.values()])


def skipped(cluster: InmemCluster) -> int:
    return sum(node.data.inboxes.skipped for node in cluster.nodes.values())


async def shown(router: RouterFlows, user: str) -> list[tuple[str, str]]:
    """What the reader sees, by author and text (post ids differ between the two clusters)."""
    return [(p.author, p.text) for p in post_bytes.decode(await router.timeline.read(user, 100, 0))]


async def history(cluster: InmemCluster, router: RouterFlows, away: bool) -> list[tuple[str, str]]:
    """The same story on either cluster: a reader follows four normal authors and a hot one, reads,
    and (with `away`) leaves for longer than inactive_after while everyone posts, deletes, and the
    reader's follows change; then reads again."""
    for i in range(5):
        await router.follows.follow(f"fan{i}", "star")
    for author in ("a0", "a1", "a2", "a3", "star"):
        await router.follows.follow("reader", author)
    before = [await router.posts.post(a, f"{a} before") for a in ("a0", "a1", "a2", "star")]
    await cluster.settle(router)
    await router.timeline.read("reader", 10, 0)
    if away:
        await asyncio.sleep(AWAY_S + 0.1)
        assert await sweep(cluster) >= 1
    for i in range(3):
        for a in ("a0", "a1", "a2", "a3", "star", "a4"):
            await router.posts.post(a, f"{a} away {i}")
    await router.posts.delete("a1", before[1].id)
    await router.follows.unfollow("reader", "a2")
    await router.follows.follow("reader", "a4")  # a follow while away is not a read
    await cluster.settle(router)
    return await shown(router, "reader")


def test_an_inactive_reader_gets_no_fanout_and_its_first_read_back_equals_a_never_inactive_twin() -> None:
    async def scenario() -> None:
        never = cluster_with(0, **HOT)
        expected = await history(never, never.router(), away=False)
        cluster = cluster_with(AWAY_S, **HOT)
        router = cluster.router()
        node = cluster.nodes[cluster.holder_of("reader")]
        got = await history(cluster, router, away=True)
        assert skipped(cluster) > 0 and skipped(never) == 0
        assert got == expected
        assert ("a1", "a1 before") not in got and not any(a == "a2" for a, _ in got)
        assert "reader" not in node.data.inboxes.inactive  # active again: fan-out resumes at once
        assert router.timeline.activity.rebuilds == 1
        fresh = await router.posts.post("a0", "after the return")
        await cluster.settle(router)
        assert node.data.inboxes.read("reader", 1) == [fresh.SerializeToString()]  # delivered, not merged
        assert (await shown(router, "reader"))[0] == ("a0", "after the return")
        assert router.timeline.activity.rebuilds == 1  # one rebuild per return

    asyncio.run(scenario())


def test_a_rebuild_that_cannot_finish_fails_the_read_and_the_next_read_rebuilds() -> None:
    async def scenario() -> None:
        cluster = cluster_with(AWAY_S)
        router = cluster.router()
        authors = [f"w{i}" for i in range(12)]  # enough to land on every node
        for author in authors:
            await router.follows.follow("reader", author)
        await router.timeline.read("reader", 10, 0)
        await asyncio.sleep(AWAY_S + 0.1)
        await sweep(cluster)
        made = [(await router.posts.post(a, f"{a} while away")).id for a in authors]
        await cluster.settle(router)
        elsewhere = next(n for n in cluster.nodes if n != cluster.holder_of("reader"))
        cluster.down(elsewhere)
        with pytest.raises(FeedringError):
            await router.timeline.read("reader", 100, 0)
        cluster.up(elsewhere)
        got = [p.id for p in post_bytes.decode(await router.timeline.read("reader", 100, 0))]
        assert got == sorted(made, reverse=True)

    asyncio.run(scenario())


def test_who_read_when_is_replicated_and_an_inactive_reader_is_skipped_on_every_replica() -> None:
    async def scenario() -> None:
        cluster = cluster_with(AWAY_S, replication_factor=3)
        router = cluster.router()
        await router.follows.follow("reader", "a0")
        await router.timeline.read("reader", 10, 0)
        records = {n: node.data.readers.last_read("reader") for n, node in cluster.nodes.items()}
        assert len(set(records.values())) == 1 and None not in records.values(), records
        await asyncio.sleep(AWAY_S + 0.1)
        assert await sweep(cluster) == 3  # the reader, on each of its three replicas
        post = await router.posts.post("a0", "unseen until the return")
        await cluster.settle(router)
        assert skipped(cluster) == 3
        assert [p.id for p in post_bytes.decode(await router.timeline.read("reader", 10, 0))] == [post.id]
        assert not any(node.data.inboxes.inactive for node in cluster.nodes.values())
        for node in cluster.nodes.values():
            assert node.data.inboxes.read("reader", 10) == [post.SerializeToString()]

    asyncio.run(scenario())


def test_a_read_by_a_user_who_never_followed_anyone_writes_nothing_and_a_followers_read_is_recorded() -> None:
    async def scenario() -> None:
        cluster = cluster_with(AWAY_S, replication_factor=3)
        router = cluster.router()
        await router.follows.follow("reader", "a0")
        await asyncio.sleep(AWAY_S / 20 + 0.05)  # the follow's record is old enough to be refreshed by a read
        for user in ("reader", "stranger", "nobody-at-all"):
            await router.timeline.read(user, 10, 0)
        await asyncio.sleep(0.05)  # touches are sent without waiting
        assert cluster.transport.count("TouchReader") == 1  # the follower's read only
        for node in cluster.nodes.values():
            assert node.data.readers.last_read("stranger") is None
            assert node.data.readers.last_read("nobody-at-all") is None
            last_ms, rebuilding = node.data.readers.last_read("reader") or (0, True)
            assert last_ms and not rebuilding

    asyncio.run(scenario())
