"""A record's pages of followers written several at a time: the checkpoint moves only past pages
that landed with every page before them, a page that fails is written again from there, and
every follower ends up with the post. In-memory twin and the window on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from common import post_bytes
from common.errors import Unavailable
from node.pages_in_flight import PagesInFlight
from protos import storage_pb2
from tests.inmem_cluster import InmemCluster, make_config


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def test_the_oldest_page_lands_first_in_the_order_pages_started_whatever_order_they_finish() -> None:
    async def scenario() -> None:
        finished: list[str] = []

        async def write(name: str, delay: float) -> None:
            await asyncio.sleep(delay)
            finished.append(name)

        pages = PagesInFlight(3)
        pages.start(write("a", 0.03), "a")
        pages.start(write("b", 0.0), "b")
        assert not pages.full()
        pages.start(write("c", 0.01), "c")
        assert pages.full() and len(pages) == 3
        assert await pages.oldest_landed() == "a"
        assert finished == ["b", "c", "a"]  # written at once, answered in order
        assert [await pages.oldest_landed(), await pages.oldest_landed()] == ["b", "c"] and not pages

    run(scenario)


def test_a_failed_page_raises_where_it_stands_and_the_pages_after_it_are_let_land() -> None:
    async def scenario() -> None:
        landed: list[str] = []

        async def fails() -> None:
            raise Unavailable("replicas down")

        async def lands(name: str) -> None:
            await asyncio.sleep(0.01)
            landed.append(name)

        pages = PagesInFlight(4)
        pages.start(lands("a"), "a")
        pages.start(fails(), "b")
        pages.start(lands("c"), "c")
        assert await pages.oldest_landed() == "a"
        with pytest.raises(Unavailable):
            await pages.oldest_landed()
        await pages.close()
        assert landed == ["a", "c"] and not pages

    run(scenario)


def test_a_big_authors_pages_are_written_at_once_and_a_failed_one_is_never_checkpointed_past() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3, partitions=16, replication_factor=3))
        router = cluster.router()
        fans = [f"fan{i:03d}" for i in range(100)]  # 7 pages of 16 (the twin's page)
        for fan in fans:
            await router.follows.follow(fan, "bob")
        some_node = next(iter(cluster.nodes.values()))
        driver = cluster.nodes[some_node.ownership.map.primary(some_node.data.partition("bob"))].delivery
        failing_page = sorted(fans)[32:48]  # the third page
        checkpoints: list[str] = []  # the record's checkpoints, and when the failing page landed
        failed: list[list[str]] = []
        in_flight, most = 0, 0
        send, checkpoint = driver._send, driver.log.checkpoint

        async def sending(record: storage_pb2.Delivery, consumers: list[str]) -> None:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            try:
                await asyncio.sleep(0.005)
                if consumers == failing_page and not failed:
                    failed.append(consumers)
                    raise Unavailable("a page that fails the first time")
                await send(record, consumers)
                if consumers == failing_page:
                    checkpoints.append("landed")
            finally:
                in_flight -= 1

        def checkpointing(key: bytes, record: storage_pb2.Delivery) -> None:
            checkpoints.append(record.after)
            checkpoint(key, record)

        driver._send = sending  # type: ignore[method-assign]
        driver.log.checkpoint = checkpointing  # type: ignore[method-assign]
        await router.posts.post("bob", "to a hundred")
        await cluster.settle(router)
        for fan in fans:
            items = post_bytes.decode(await router.timeline.read(fan, 10, 0))
            assert [p.text for p in items] == ["to a hundred"], fan
        assert most > 1, "one page at a time"
        assert most <= driver.pages_in_flight
        assert failed, "the page never failed"
        before = checkpoints[: checkpoints.index("landed")]
        assert before and all(c < failing_page[0] for c in before), before  # never past a page not landed
        assert cluster.outstanding() == 0
        await cluster.close()

    run(scenario)
