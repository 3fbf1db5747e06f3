"""AsyncFeedClient on a real cluster, from a real event loop: many calls in flight at once, a map
that moved under it, paging that stops early, and the example aiohttp app. (Every scenario of the
blocking client runs with it too: test_feed.py.)"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import aiohttp
from aiohttp import web

from client import AsyncFeedClient, InvalidArgument
from examples.timeline_app import make_app
from tests.integration.conftest import ClusterHandle


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def test_many_calls_in_flight_from_one_event_loop(cluster: ClusterHandle) -> None:
    tag = _tag()
    readers = [f"reader{i}-{tag}" for i in range(20)]
    author = f"author-{tag}"

    async def scenario() -> None:
        async with AsyncFeedClient(cluster.router_address) as feed:
            assert all(await asyncio.gather(*(feed.follow(r, author) for r in readers)))
            posts = await asyncio.gather(*(feed.post(author, f"post {i}") for i in range(30)))
            assert len({p.id for p in posts}) == 30
            for _ in range(100):  # until delivered: fan-out is asynchronous
                pages = await asyncio.gather(*(feed.timeline(r, page_size=50) for r in readers))
                if all(len(p.items) == 30 for p in pages):
                    break
                await asyncio.sleep(0.1)
            assert all([q.id for q in page.items] == sorted((p.id for p in posts), reverse=True) for page in pages)
            first_ten = [p async for p in _take(feed.iter_timeline(readers[0], page_size=5), 10)]
            assert [p.id for p in first_ten] == [p.id for p in pages[0].items[:10]]

    asyncio.run(scenario())


async def _take(items, n):  # type: ignore[no-untyped-def]
    async for item in items:
        yield item
        n -= 1
        if n == 0:
            return


def test_a_stale_map_is_followed_and_a_dead_replica_skipped(cluster: ClusterHandle) -> None:
    tag = _tag()

    async def scenario() -> None:
        async with AsyncFeedClient(cluster.router_address) as feed:
            await feed.follow(f"stale-reader-{tag}", f"stale-author-{tag}")
            current = feed.state.routing if feed.state else None
            assert current is not None
            dead = "127.0.0.1:1"
            feed.state.routing = replace(current, epoch=current.epoch - 1, addresses=(dead, *current.addresses[1:]))  # type: ignore[union-attr]
            for i in range(20):
                await feed.post(f"stale-author-{tag}", f"through a stale map {i}")
                await feed.timeline(f"stale-reader-{tag}")
            assert feed.state.routing.epoch == current.epoch  # type: ignore[union-attr]
            assert dead not in feed.state.routing.addresses  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_errors_are_feedring_errors(cluster: ClusterHandle) -> None:
    async def scenario() -> None:
        async with AsyncFeedClient(cluster.router_address) as feed:
            try:
                await feed.post("not a user", "x")
            except InvalidArgument as exc:
                assert "not a valid user id" in str(exc)
            else:
                raise AssertionError("a bad author was accepted")

    asyncio.run(scenario())


def test_the_example_app_serves_follows_posts_and_timelines(cluster: ClusterHandle) -> None:
    tag = _tag()
    alice, bob = f"alice-{tag}", f"bob-{tag}"

    async def scenario() -> None:
        runner = web.AppRunner(make_app(cluster.router_address))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{base}/users/{alice}/follow/{bob}") as r:
                    assert r.status == 200 and (await r.json()) == {"created": True}
                async with http.post(f"{base}/users/{bob}/posts", data="hello from the app") as r:
                    assert r.status == 201
                    post_id = (await r.json())["id"]
                for _ in range(100):
                    async with http.get(f"{base}/users/{alice}/timeline?limit=5") as r:
                        assert r.status == 200
                        posts = (await r.json())["posts"]
                    if posts:
                        break
                    await asyncio.sleep(0.1)
                assert [(p["id"], p["author"], p["text"]) for p in posts] == [(post_id, bob, "hello from the app")]
                async with http.post(f"{base}/users/not a user/posts", data="x") as r:
                    assert r.status == 400 and "not a valid user id" in (await r.json())["error"]
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
