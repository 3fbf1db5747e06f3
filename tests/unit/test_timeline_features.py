"""Home timelines as apps read them, on the in-memory twin: the reader's own posts among its
followees', "what is newer than the newest post I have" (newer-than reads), and live updates."""

from __future__ import annotations

import asyncio
import contextlib

from client.results import Post, Removed
from client.watching import WatchCursor
from common import post_bytes
from common.hot_state import HotState
from feed.post_ids import ids_in_ms
from node.feed_api import feed_flows
from protos import feed_pb2
from router.flows import RouterFlows
from tests.inmem_cluster import InmemCluster, make_config

HOT = {"follower_threshold": 5, "cooldown_ratio": 0.5, "salt_buckets": 4, "cache_ttl_ms": 0}


async def ids(router: RouterFlows, user: str, limit: int = 100, before_id: int = 0, after_id: int = 0) -> list[int]:
    return [p.id for p in post_bytes.decode(await router.timeline.read(user, limit, before_id, after_id))]


async def every_page(router: RouterFlows, user: str, size: int, after_id: int = 0) -> list[int]:
    seen: list[int] = []
    before = 0
    while page := await ids(router, user, size, before, after_id):
        seen += page
        before = page[-1]
    return seen


async def hot_star_and_reader(cluster: InmemCluster, router: RouterFlows) -> None:
    """`reader` follows a hot `star` and a normal `plain`."""
    for i in range(5):
        await router.follows.follow(f"fan{i}", "star")
    await router.follows.follow("reader", "star")
    await router.follows.follow("reader", "plain")
    await cluster.settle(router)
    assert router.hot.state("star") is HotState.HOT and router.hot.state("reader") is HotState.NORMAL


def test_own_posts_are_paged_exactly_among_an_inbox_and_a_hot_authors_posts_and_leave_when_deleted() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**HOT))
        router = cluster.router()
        await hot_star_and_reader(cluster, router)
        made = [(await router.posts.post(("star", "plain", "reader")[i % 3], f"p{i}")).id for i in range(14)]
        await cluster.settle(router)
        for size in (1, 3, 4, 100):
            assert await every_page(router, "reader", size) == sorted(made, reverse=True)
        own = made[2::3]
        await router.posts.delete("reader", own[1])
        assert own[1] not in await ids(router, "reader")
        assert await ids(router, "plain") == [made[i] for i in range(13, -1, -1) if i % 3 == 1]  # its own only

    asyncio.run(scenario())


def test_a_hot_readers_own_posts_come_from_its_salted_keys_and_its_home_key() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**HOT))
        router = cluster.router()
        before_hot = await router.posts.post("star", "at home")
        await hot_star_and_reader(cluster, router)
        await router.follows.follow("star", "plain")
        salted = await router.posts.post("star", "salted")
        plain = await router.posts.post("plain", "fanned out")
        await cluster.settle(router)
        assert await ids(router, "star") == [plain.id, salted.id, before_hot.id]
        assert await every_page(router, "star", 1) == [plain.id, salted.id, before_hot.id]

    asyncio.run(scenario())


def test_newer_than_reads_stop_at_the_id_at_every_boundary() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**HOT))
        router = cluster.router()
        await hot_star_and_reader(cluster, router)
        made = [(await router.posts.post(("star", "plain", "reader")[i % 3], f"p{i}")).id for i in range(9)]
        await cluster.settle(router)
        newest_first = sorted(made, reverse=True)
        assert await ids(router, "reader", after_id=newest_first[0]) == []  # equal to the newest: nothing new
        assert await ids(router, "reader", after_id=newest_first[0] + 1) == []
        assert await ids(router, "reader", after_id=newest_first[-1] - 1) == newest_first  # older than the oldest
        assert await ids(router, "reader", after_id=0) == newest_first  # unset
        for k in range(len(made)):
            bound = newest_first[k]
            assert await ids(router, "reader", after_id=bound) == newest_first[:k]
            # More newer posts than a page: paging down reaches the id and stops there.
            assert await every_page(router, "reader", 2, after_id=bound) == newest_first[:k]

    asyncio.run(scenario())


# -- live updates ------------------------------------------------------------------------------------


class Watcher:
    """One WatchTimeline stream served by the node holding the reader's inbox, collected in a task;
    what a client receives, taken through the client's own cursor (client/watching.py)."""

    def __init__(self, cluster: InmemCluster, user: str, cursor: WatchCursor) -> None:
        self.flows = feed_flows(cluster.config, cluster.nodes[cluster.holder_of(user)])
        self.cursor = cursor
        self.got: list[Post | Removed] = []
        self.raw_ids: list[int] = []
        self._task = asyncio.create_task(self._run(user))

    async def _run(self, user: str) -> None:
        request = self.cursor.request(user)
        async for event in self.flows.watch.events(user, request.after_id, request.order_hold_ms):
            if event.HasField("post"):
                self.raw_ids.append(event.post.id)
            out = self.cursor.take(event)
            if out is not None:
                self.got.append(out)

    async def until(self, count: int, timeout_s: float = 5.0) -> list[Post | Removed]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(self.got) < count and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        return self.got

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def test_a_watch_gets_each_new_entry_once_hot_and_own_posts_too_and_removals() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(**HOT))
        router = cluster.router()
        await hot_star_and_reader(cluster, router)
        old = await router.posts.post("plain", "before the watch")
        await cluster.settle(router)
        watcher = Watcher(cluster, "reader", WatchCursor(old.id))
        await asyncio.sleep(0.05)
        made = [await router.posts.post(a, f"live {a}") for a in ("plain", "star", "reader", "plain")]
        await cluster.settle(router)
        got = await watcher.until(len(made))
        # Hot and own posts too, each once. (In landing order: the own and the hot posts are stored
        # before their acknowledgement, a followee's lands when its delivery does.)
        assert sorted(p.id for p in got if isinstance(p, Post)) == [p.id for p in made]
        await router.posts.delete("plain", made[0].id)
        await cluster.settle(router)
        assert (await watcher.until(len(made) + 1))[-1] == Removed(made[0].id)
        assert len(watcher.raw_ids) == len(set(watcher.raw_ids)) == len(made)  # the stream itself: once each
        await watcher.close()

    asyncio.run(scenario())


def test_a_resumed_watch_misses_nothing_that_landed_late_and_repeats_nothing() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config())
        router = cluster.router()
        await router.follows.follow("reader", "plain")
        anchor = await router.posts.post("plain", "seen")
        await cluster.settle(router)
        cursor = WatchCursor(anchor.id)
        first = Watcher(cluster, "reader", cursor)
        seen = [(await router.posts.post("plain", f"a{i}")).id for i in range(3)]
        await cluster.settle(router)
        assert [p.id for p in await first.until(3) if isinstance(p, Post)] == seen
        await first.close()  # the serving process went away
        # While no stream is open: a new post, and one made before the last seen that lands late (its
        # author's node was down): it has an older id than entries already given.
        late = feed_pb2.Post(id=seen[-1] - 1000, author="slow", text="late")
        node = cluster.nodes[cluster.holder_of("reader")]
        node.data.inboxes.insert([late], ["reader"])
        after = (await router.posts.post("plain", "after")).id
        await cluster.settle(router)
        second = Watcher(cluster, "reader", cursor)  # resumes from the same cursor
        await second.until(2)
        await asyncio.sleep(0.05)
        assert [p.id for p in second.got if isinstance(p, Post)] == [late.id, after]  # all of it, once
        assert set(second.raw_ids) >= {*seen, late.id, after}  # the server resent the look-back; dropped
        await second.close()

    asyncio.run(scenario())


def test_a_watch_asking_for_id_order_gets_an_older_post_that_lands_late_first() -> None:
    """Without order_hold_ms a post is sent as it lands; with it, one landing within the hold after a
    newer one comes first, and a resume from the last id seen would miss neither."""

    async def scenario() -> None:
        cluster = InmemCluster(make_config())
        router = cluster.router()
        await router.follows.follow("reader", "plain")
        anchor = await router.posts.post("plain", "seen")
        await cluster.settle(router)
        node = cluster.nodes[cluster.holder_of("reader")]
        orders, start = {}, anchor.id
        for hold_ms in (0, 600):
            watcher = Watcher(cluster, "reader", WatchCursor(start, hold_ms))
            await asyncio.sleep(0.05)
            newer = await router.posts.post("plain", f"newer, hold {hold_ms}")
            await cluster.settle(router)
            await asyncio.sleep(0.15)  # the older one's delivery lands later
            older = feed_pb2.Post(id=newer.id - ids_in_ms(40), author="slow", text=f"older, hold {hold_ms}")
            node.data.inboxes.insert([older], ["reader"])
            got = await watcher.until(2)
            orders[hold_ms] = [p.id for p in got if isinstance(p, Post)]
            assert sorted(orders[hold_ms]) == [older.id, newer.id], hold_ms
            await watcher.close()
            start = newer.id
        assert orders[0][0] > orders[0][1]  # as they landed
        assert orders[600][0] < orders[600][1]  # in id order

    asyncio.run(scenario())
