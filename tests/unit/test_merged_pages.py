"""A node's kept merged timeline pages (feed/merged_pages.py): a page given again is the page the
same sources would merge to now, whatever was written and whichever coordinator wrote it."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import post_bytes
from feed.flows import FeedFlows
from feed.merged_pages import MergedPages
from feed.timeline import TimelineReader
from node.feed_api import feed_flows
from tests.inmem_cluster import InmemCluster, make_config

# Hot at 3 followers; cached hot posts live a minute, so pages are given again from the kept sources.
HOT = {"follower_threshold": 3, "cooldown_ratio": 0.5, "salt_buckets": 4, "cache_ttl_ms": 60_000}
USERS = ["ann", "bob", "cat", "dan", "eve"]
user = st.sampled_from(USERS)
operation = st.one_of(
    st.tuples(st.just("follow"), user, user),
    st.tuples(st.just("unfollow"), user, user),
    st.tuples(st.just("post via the router"), user, user),
    st.tuples(st.just("post via the node"), user, user),  # the node's hot-post cache takes it at once
    st.tuples(st.just("delete via the node"), user, user),
    st.tuples(st.just("mute"), user, user),
    st.tuples(st.just("crowd"), user, user),  # every other user follows: past the hot threshold
)


def node_flows(cluster: InmemCluster) -> tuple[FeedFlows, TimelineReader]:
    """n1's Feed API flows, as a node builds them, and a reader over the very same storage, hot-post
    cache and reader activity that keeps no page: what n1 would merge without its kept pages."""
    flows = feed_flows(cluster.config, cluster.nodes["n1"])
    assert flows.timeline.merged.capacity  # a node keeps pages (storage.timeline_cache)
    fresh = TimelineReader(flows.storage, flows.reads, flows.cache, flows.timeline.activity, MergedPages(0))
    return flows, fresh


async def ids(reader: TimelineReader, who: str, limit: int = 20) -> list[int]:
    return [p.id for p in post_bytes.decode(await reader.read(who, limit, 0))]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=25))
def test_a_kept_merged_page_is_the_page_its_sources_merge_to_now(ops: list[tuple[str, str, str]]) -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(replication_factor=3, **HOT))
        router = cluster.router()
        flows, fresh = node_flows(cluster)
        posted: dict[str, list[int]] = {u: [] for u in USERS}
        try:
            for kind, who, other in ops:
                if kind == "follow" and who != other:
                    await router.follows.follow(who, other)
                elif kind == "unfollow" and who != other:
                    await router.follows.unfollow(who, other)
                elif kind == "post via the router":
                    posted[who].append((await router.posts.post(who, f"{who} on the router")).id)
                elif kind == "post via the node":
                    posted[who].append((await flows.posts.post(who, f"{who} on n1")).id)
                elif kind == "delete via the node" and posted[who]:
                    await flows.posts.delete(who, posted[who].pop())
                elif kind == "mute" and who != other:
                    await router.relations.mute(who, other, True)
                elif kind == "crowd":
                    for fan in USERS:
                        if fan != who:
                            await router.follows.follow(fan, who)
                await cluster.settle(router)
                await flows.hot.refresh()
                for reader in USERS:
                    for _ in range(2):  # the second read may be given the kept page
                        assert await ids(flows.timeline, reader) == await ids(fresh, reader), (kind, who, reader)
        finally:
            await cluster.close()

    asyncio.run(scenario())


def test_a_node_gives_a_hot_followers_page_again_until_a_source_changes() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(replication_factor=3, **HOT))
        router = cluster.router()
        flows, fresh = node_flows(cluster)
        try:
            for fan in ("ann", "bob", "cat"):
                await router.follows.follow(fan, "star")
            await router.follows.follow("ann", "dan")
            await cluster.settle(router)
            await flows.hot.refresh()
            star = (await router.posts.post("star", "shine")).id
            dan = (await router.posts.post("dan", "hello")).id
            await cluster.settle(router)
            assert await ids(flows.timeline, "ann") == sorted([dan, star], reverse=True)
            await asyncio.sleep(0)  # a first read records the reader (a write: a new inbox reply)
            assert await ids(flows.timeline, "ann") == sorted([dan, star], reverse=True)
            hits = flows.timeline.merged.hits
            assert await ids(flows.timeline, "ann") == sorted([dan, star], reverse=True)
            assert flows.timeline.merged.hits == hits + 1  # nothing changed: the kept page
            again = (await flows.posts.post("star", "again")).id  # n1's hot-post cache takes it
            assert await ids(flows.timeline, "ann") == sorted([again, dan, star], reverse=True)
            later = (await router.posts.post("dan", "later")).id  # delivered to ann's inbox
            await cluster.settle(router)
            newest_first = sorted([later, again, dan, star], reverse=True)  # ids of two generators, same ms
            assert await ids(flows.timeline, "ann") == newest_first == await ids(fresh, "ann")
        finally:
            await cluster.close()

    asyncio.run(scenario())


def test_pages_kept_are_bounded_and_a_router_keeps_none() -> None:
    pages = MergedPages(2)
    sources: list[object] = [object()]
    for reader in ("a", "b", "c"):
        pages.put(reader, 21, sources, [reader.encode()])
    assert len(pages) == 2 and pages.get("a", 21, sources) is None and pages.get("c", 21, sources) == [b"c"]
    assert pages.get("c", 21, [object()]) is None  # other sources: merged anew
    assert pages.get("c", 5, sources) is None  # another page size

    async def a_router() -> None:
        cluster = InmemCluster(make_config(replication_factor=3, **HOT))
        assert cluster.router().timeline.merged.capacity == 0
        await cluster.close()

    asyncio.run(a_router())
