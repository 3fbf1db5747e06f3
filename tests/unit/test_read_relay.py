"""A router's read relay (router/read_relay.py) over the in-memory twin, with the node's Feed API on a
real gRPC server: a relayed timeline read is one call to the node, answered with the node's bytes
and no storage RPC from the router; a node that does not answer is passed over and the router reads
the timeline itself; a node's own refusal reaches the caller in its words."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import grpc
import pytest

from common.service_handlers import add_service, handlers_of
from feed.public_server import FEED_SERVICE
from node.feed_api import feed_flows
from protos import feed_pb2
from router.flows import RouterFlows
from router.read_relay import EncodedReply, ReadRelay
from tests.inmem_cluster import InmemCluster, make_config

DEAD = "127.0.0.1:1"  # nothing listens there: a connection is refused at once


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, details)
        self.code, self.details = code, details


class Context:
    """What a handler uses of grpc.aio.ServicerContext."""

    def time_remaining(self) -> float:
        return 5.0

    def trailing_metadata(self) -> tuple[()]:
        return ()

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


async def relay_over(cluster: InmemCluster, feed_addresses: dict[str, str]) -> tuple[RouterFlows, ReadRelay]:
    """A router whose map gives the nodes these Feed addresses, and its relay."""
    router = cluster.router()
    old = router.storage.map
    members = tuple(replace(m, feed_address=feed_addresses.get(m.id, "")) for m in old.members)
    router.storage.map = replace(old, members=members)
    return router, ReadRelay(router.storage, router.feed_service(), "", None)


async def serve_feed(cluster: InmemCluster, node_id: str) -> tuple[grpc.aio.Server, str]:
    """The node's Feed API (node/feed_api.py, over the twin) on a real gRPC server."""
    server = grpc.aio.server()
    node_feed = feed_flows(cluster.config, cluster.nodes[node_id]).feed_service()
    add_service(server, FEED_SERVICE, handlers_of(FEED_SERVICE, node_feed))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def reader_whose_primary_is(cluster: InmemCluster, node_id: str) -> str:
    node = cluster.nodes[node_id]
    return next(f"r{i}" for i in range(10_000) if node.ownership.map.primary_for_key(f"r{i}") == node_id)


def test_a_relayed_read_is_the_nodes_page_passed_through_with_no_storage_rpc_from_the_router() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3, partitions=32, replication_factor=1))
        server, address = await serve_feed(cluster, "n1")
        router, relay = await relay_over(cluster, {"n1": address, "n2": DEAD, "n3": DEAD})
        reader = reader_whose_primary_is(cluster, "n1")
        await router.follows.follow(reader, "bob")
        for i in range(3):
            await router.posts.post("bob", f"post {i}")
        await cluster.settle(router)
        request = feed_pb2.GetTimelineRequest(user=reader, page_size=2)
        own = await router.feed_service().GetTimeline(request, Context())

        before = Counter(cluster.transport.calls)
        reply = await relay.GetTimeline(request, Context())
        assert cluster.transport.calls == before  # the node read it in process; the router sent no storage RPC
        assert isinstance(reply, EncodedReply) and (relay.relayed, relay.fell_back) == (1, 0)
        page = feed_pb2.PostPage.FromString(reply.SerializeToString())
        assert [p.text for p in page.posts] == ["post 2", "post 1"]
        assert reply.SerializeToString() == own.SerializeToString()  # the same page the router builds
        await server.stop(None)
        await relay.close()
        await cluster.close()

    run(scenario)


def test_a_node_that_does_not_answer_is_passed_over_and_the_router_reads_the_timeline_itself() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3, partitions=32, replication_factor=1))
        router, relay = await relay_over(cluster, {"n1": DEAD, "n2": DEAD, "n3": ""})
        await router.follows.follow("reader", "bob")
        await router.posts.post("bob", "still readable")
        await cluster.settle(router)
        reply = await relay.GetTimeline(feed_pb2.GetTimelineRequest(user="reader"), Context())
        page = feed_pb2.PostPage.FromString(reply.SerializeToString())
        assert [p.text for p in page.posts] == ["still readable"]
        assert (relay.relayed, relay.fell_back) == (0, 1)
        await relay.close()
        await cluster.close()

    run(scenario)


def test_a_nodes_refusal_reaches_the_caller_in_its_words() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3, partitions=32, replication_factor=1))
        servers = [await serve_feed(cluster, n) for n in ("n1", "n2", "n3")]
        router, relay = await relay_over(cluster, {n: a for n, (_, a) in zip(("n1", "n2", "n3"), servers, strict=True)})
        with pytest.raises(Aborted) as refused:
            await relay.GetTimeline(feed_pb2.GetTimelineRequest(user="reader", page_token="not-a-token"), Context())
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in refused.value.details
        assert relay.fell_back == 0
        for server, _ in servers:
            await server.stop(None)
        await relay.close()
        await cluster.close()

    run(scenario)
