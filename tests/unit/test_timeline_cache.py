"""The node's cache of timelines' first pages (node/timeline_cache.py): whatever was written, a
cached reply is the reply the node would build from its store now."""

from __future__ import annotations

import asyncio
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.change_feed import ChangeFeed, ObservedStore
from node.data_service import DataServicer
from node.store import MemoryStore
from node.timeline_cache import TimelineCache
from protos import storage_pb2
from tests.inmem_cluster import InmemCluster, make_config
from tests.unit.test_timeline_features import HOT

USERS = ["ann", "bob", "cat", "fan0", "fan1", "fan2", "fan3", "fan4"]
user = st.sampled_from(USERS)
operation = st.one_of(
    st.tuples(st.just("follow"), user, user),
    st.tuples(st.just("unfollow"), user, user),
    st.tuples(st.just("post"), user, user),
    st.tuples(st.just("delete"), user, user),
    st.tuples(st.just("mute"), user, user),
    st.tuples(st.just("unmute"), user, user),
    st.tuples(st.just("block"), user, user),
    st.tuples(st.just("unblock"), user, user),
    st.tuples(st.just("read"), user, st.sampled_from(["1", "3"])),
    st.tuples(st.just("crowd"), user, user),  # five fans follow at once: past the hot threshold
)


def servicer_of(node: object) -> DataServicer:
    servicer = node.handlers["ReadInbox"].__self__  # type: ignore[attr-defined]
    assert isinstance(servicer, DataServicer)
    return servicer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=30))
def test_a_cached_first_page_is_what_the_store_holds_after_any_writes(ops: list[tuple[str, str, str]]) -> None:
    """Follows (past the hot threshold too: a hot reader's own posts are a kept page), unfollows,
    posts, deletes, mutes and blocks, with reads of every reader between them that fill the cache;
    after each step, every node's cached first page of every reader (and of every author's posts)
    equals the page built from its store."""

    async def scenario() -> None:
        cluster = InmemCluster(make_config(replication_factor=3, **HOT))
        router = cluster.router()
        posted: dict[str, list[int]] = {u: [] for u in USERS}
        try:
            for kind, who, other in ops:
                try:
                    if kind == "follow" and who != other:
                        await router.follows.follow(who, other)
                    elif kind == "unfollow" and who != other:
                        await router.follows.unfollow(who, other)
                    elif kind == "post":
                        posted[who].append((await router.posts.post(who, f"{who} says {other}")).id)
                    elif kind == "delete" and posted[who]:
                        await router.posts.delete(who, posted[who].pop(0))
                    elif kind in ("mute", "unmute") and who != other:
                        await router.relations.mute(who, other, kind == "mute")
                    elif kind == "block" and who != other:
                        await router.relations.block(who, other)
                    elif kind == "unblock" and who != other:
                        await router.relations.unblock(who, other)
                    elif kind == "crowd":
                        for fan in USERS[3:]:
                            if fan != who:
                                await router.follows.follow(fan, who)
                    elif kind == "read":
                        await router.timeline.read(who, int(other), 0)
                except Exception as exc:  # a refused call (a follow across a block) writes nothing
                    assert "block" in str(exc), exc
                await cluster.settle(router)
                for node in cluster.nodes.values():
                    servicer = servicer_of(node)
                    for reader in USERS:
                        for limit in (1, 3, 20):  # the reads above ask for these
                            request = storage_pb2.ReadInboxRequest(consumer=reader, limit=limit)
                            cached = servicer.timeline_cache.get(reader.encode(), limit)
                            if cached is not None:
                                assert cached == servicer._read_inbox(request), (kind, who, other, reader, limit)
                    for page, (limit, kept) in list(servicer.timeline_cache._pages.items()):
                        if isinstance(page, tuple):  # an author's first page of posts (a hot reader's own)
                            author_keys = page[1]
                            request = storage_pb2.ReadPostsRequest(
                                author_key=author_keys[0], more_keys=author_keys[1:], limit=limit
                            )
                            assert kept == servicer._read_posts(request), (kind, who, other, author_keys)
                for reader in USERS:
                    await router.timeline.read(reader, 20, 0)
                await asyncio.sleep(0)  # a first read records the reader (a write): let it land
                for reader in USERS:
                    await router.timeline.read(reader, 20, 0)
                # Every reader's page is cached now, for the next step's writes to keep or drop (a
                # step may drop them all: a crowd that makes a user hot changes every reader's page).
                assert all(
                    any(servicer_of(node).timeline_cache.get(reader.encode(), 20) for node in cluster.nodes.values())
                    for reader in USERS
                )
        finally:
            await cluster.close()

    asyncio.run(scenario())


def test_each_kind_of_write_that_changes_a_first_page_forgets_it() -> None:
    """One write of each family a first page reads, each after the page was cached; the page the
    node then answers is the one built from its store, and differs from the one before. (A block
    writes V and W keys, and in the same batches the unfollows' inbox marks, which forget the page
    too: no page changes by a V or W key alone.)"""

    async def scenario() -> None:
        cluster = InmemCluster(make_config(replication_factor=3, **HOT))
        router = cluster.router()

        async def page() -> list[object]:
            await router.timeline.read("ann", 20, 0)
            await asyncio.sleep(0)
            await router.timeline.read("ann", 20, 0)  # cached now, on the replica that answered
            request = storage_pb2.ReadInboxRequest(consumer="ann", limit=20)
            return [servicer_of(n)._read_inbox(request) for n in cluster.nodes.values()]

        async def step(write: object) -> None:
            before = await page()
            await write  # type: ignore[misc]
            await cluster.settle(router)
            compared = 0
            for node, old in zip(cluster.nodes.values(), before, strict=True):
                servicer = servicer_of(node)
                cached = servicer.timeline_cache.get(b"ann", 20)
                fresh = servicer._read_inbox(storage_pb2.ReadInboxRequest(consumer="ann", limit=20))
                assert fresh != old  # the write changed the page
                if cached is not None:
                    assert cached == fresh
                    compared += 1
            assert sum(servicer_of(n).timeline_cache.misses for n in cluster.nodes.values())

        try:
            await router.follows.follow("ann", "bob")
            await router.posts.post("bob", "hello")
            await cluster.settle(router)
            await step(router.relations.mute("ann", "bob", True))  # U
            await step(router.relations.mute("ann", "bob", False))
            await step(router.relations.block("ann", "bob"))  # V
            await router.relations.unblock("ann", "bob")  # the page stays empty: follows stay gone
            await step(router.follows.follow("ann", "bob"))  # I: bob's post copied back in
            await router.follows.follow("ann", "cat")
            await router.posts.post("cat", "meow")
            await cluster.settle(router)
            await step(router.relations.block("cat", "ann"))  # W
            await step(router.posts.post("ann", "mine"))  # P
            for i in range(5):
                await router.follows.follow(f"fan{i}", "star")
            await step(router.follows.follow("ann", "star"))  # K (and I: a follow clears a mark)
            await router.follows.follow("ann", "sun")
            await cluster.settle(router)

            async def sun_turns_hot() -> None:
                for i in range(5):
                    await router.follows.follow(f"fan{i}", "sun")

            await step(sun_turns_hot())  # K alone: sun's followers read its posts at read time now
            for i in range(4):
                await router.follows.follow(f"fan{i}", "ann")
            await cluster.settle(router)
            await step(router.follows.follow("fan4", "ann"))  # H: ann is hot, her own posts salted
        finally:
            await cluster.close()

    asyncio.run(scenario())


def test_reads_are_answered_from_the_cache_until_a_write_changes_the_page() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(replication_factor=3))
        router = cluster.router()
        try:
            await router.follows.follow("ann", "bob")
            first = (await router.posts.post("bob", "one")).id
            await cluster.settle(router)
            caches = [servicer_of(n).timeline_cache for n in cluster.nodes.values()]
            assert await router.timeline.read("ann", 20, 0)
            hits = sum(c.hits for c in caches)
            for _ in range(3):
                await router.timeline.read("ann", 20, 0)
            assert sum(c.hits for c in caches) == hits + 3  # the same page again: from memory
            second = (await router.posts.post("bob", "two")).id
            await cluster.settle(router)
            from common import post_bytes

            page = [p.id for p in post_bytes.decode(await router.timeline.read("ann", 20, 0))]
            assert page == [second, first]  # the delivery forgot the page: the new post shows
        finally:
            await cluster.close()

    asyncio.run(scenario())


def test_a_hot_readers_own_posts_are_read_from_memory_until_a_post_or_delete_changes_them() -> None:
    """A hot reader's own posts are spread over its salted keys; each timeline read merges them
    (ReadPosts over all the keys). The page is kept, and a post or a delete under any of the keys
    forgets it."""

    async def scenario() -> None:
        cluster = InmemCluster(make_config(replication_factor=3, **HOT))
        router = cluster.router()
        caches = [servicer_of(n).timeline_cache for n in cluster.nodes.values()]

        async def own_posts() -> list[int]:
            from common import post_bytes

            return [p.id for p in post_bytes.decode(await router.timeline.read("ann", 20, 0))]

        def posts_pages() -> int:
            return sum(isinstance(page, tuple) for c in caches for page in c._pages)

        try:
            for i in range(5):
                await router.follows.follow(f"fan{i}", "ann")
            await cluster.settle(router)
            first = (await router.posts.post("ann", "one")).id
            second = (await router.posts.post("ann", "two")).id
            await cluster.settle(router)
            assert await own_posts() == [second, first]
            assert posts_pages() >= 1  # the merge over ann's keys is kept
            hits = sum(c.hits for c in caches)
            assert await own_posts() == [second, first]
            assert sum(c.hits for c in caches) >= hits + 2  # her timeline page and her posts' page
            third = (await router.posts.post("ann", "three")).id
            assert await own_posts() == [third, second, first]  # at once: the post forgot the page
            await router.posts.delete("ann", second)
            assert await own_posts() == [third, first]
        finally:
            await cluster.close()

    asyncio.run(scenario())


def test_a_write_from_another_thread_empties_the_cache_and_a_page_read_during_it_is_not_kept() -> None:
    cache = TimelineCache(8)
    store = ObservedStore(MemoryStore(), ChangeFeed(), cache)
    reply = storage_pb2.ReadInboxResponse(posts=[b"old"])
    cache.put(b"ann", 21, reply, cache.generation)
    assert cache.get(b"ann", 21) is reply
    generation = cache.generation  # a read starts
    worker = threading.Thread(target=store.write_unpublished, args=([(b"\x00\x01Iann\x00" + b"\x00" * 8, b"p")], []))
    worker.start()
    worker.join()
    assert cache.get(b"ann", 21) is None  # gone
    cache.put(b"ann", 21, reply, generation)  # the read, begun before the write, ends after it
    assert cache.get(b"ann", 21) is None  # not kept: it may predate the write


def test_the_cache_keeps_at_most_its_capacity_and_drops_the_least_recently_read() -> None:
    cache = TimelineCache(2)
    pages = {u: storage_pb2.ReadInboxResponse(posts=[u]) for u in (b"a", b"b", b"c")}
    cache.put(b"a", 21, pages[b"a"], 0)
    cache.put(b"b", 21, pages[b"b"], 0)
    assert cache.get(b"a", 21) is pages[b"a"]  # a is now the most recent
    cache.put(b"c", 21, pages[b"c"], 0)
    assert len(cache) == 2 and cache.get(b"b", 21) is None and cache.get(b"a", 21) is pages[b"a"]
    assert cache.get(b"a", 5) is None  # another page size is another read
    authors = {k: storage_pb2.ReadPostsResponse(posts=[k.encode()]) for k in ("x", "y")}
    cache.put_posts(("x", "x#0", "x#1"), 9, authors["x"], 0)  # evicts c
    cache.put_posts(("y",), 9, authors["y"], 0)  # evicts a
    assert cache.get_posts(("x", "x#0", "x#1"), 9) is authors["x"] and cache.get(b"c", 21) is None
    cache.forget([(b"\x00\x01Px#1\x00" + b"\x00" * 8, b"p")], [])  # a post under one of x's keys
    assert cache.get_posts(("x", "x#0", "x#1"), 9) is None and cache.get_posts(("y",), 9) is authors["y"]
    cache.put(b"a", 21, pages[b"a"], 0)
    cache.put(b"b", 21, pages[b"b"], 0)  # evicts y: its keys leave the index with it
    assert len(cache) == 2 and not cache._posts_pages_of
    off = TimelineCache(0)
    off.put(b"a", 21, pages[b"a"], 0)
    assert len(off) == 0
