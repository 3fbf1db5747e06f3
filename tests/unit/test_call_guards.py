"""The checks in front of every method (common/call_guards.py), on a real in-process aio server:
a refused call never reaches its handler (nor is decoded), sizes are checked before decoding,
bytes that are not the request are INVALID_ARGUMENT, and a client with an older map is told."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from common.call_guards import CallGuards, GuardedServer
from common.grpc_status import MAP_EPOCH_KEY
from common.security import Credentials, bearer
from protos import feed_pb2

SECRET = "s" * 32
ADMIN = "/feedring.v1.Admin/Probe"
FEED = "/feedring.v1.Feed/Probe"


def run(scenario):  # type: ignore[no-untyped-def]
    async def main() -> None:
        calls: list[Any] = []

        async def probe(request: feed_pb2.PostRequest, context: grpc.aio.ServicerContext) -> feed_pb2.Post:
            calls.append(request)
            return feed_pb2.Post(id=len(calls))

        def service(name: str) -> grpc.GenericRpcHandler:
            handler = grpc.unary_unary_rpc_method_handler(
                probe, feed_pb2.PostRequest.FromString, feed_pb2.Post.SerializeToString
            )
            return grpc.method_handlers_generic_handler(name, {"Probe": handler})

        server = grpc.aio.server()
        guards = CallGuards(
            Credentials(SECRET, frozenset({"client-token"}), feed_requires_token=False),
            metrics=True,
            sizes=({}, (1024, "it carries only ids")),
            map_epoch=lambda: 5,
        )
        guarded = GuardedServer(server, guards)
        guarded.add_generic_rpc_handlers((service("feedring.v1.Admin"), service("feedring.v1.Feed")))
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), guarded)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await scenario(channel, calls)
        finally:
            await server.stop(None)

    asyncio.run(main())


async def status(channel: grpc.aio.Channel, method: str, raw: bytes, metadata: Any = None) -> grpc.StatusCode:
    try:
        await channel.unary_unary(method)(raw, metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_a_refused_call_never_reaches_its_handler_even_with_bytes_that_are_no_request() -> None:
    async def scenario(channel, calls):  # type: ignore[no-untyped-def]
        assert await status(channel, ADMIN, b"\xff\xff garbage") == grpc.StatusCode.UNAUTHENTICATED
        assert await status(channel, ADMIN, b"", bearer("client-token")) == grpc.StatusCode.PERMISSION_DENIED
        assert await status(channel, ADMIN, b"", bearer("wrong")) == grpc.StatusCode.UNAUTHENTICATED
        assert calls == []
        ok = feed_pb2.PostRequest(author="ann", text="hi").SerializeToString()
        assert await status(channel, ADMIN, ok, bearer(SECRET)) == grpc.StatusCode.OK
        assert await status(channel, FEED, ok) == grpc.StatusCode.OK  # Feed is open unless configured
        assert [c.author for c in calls] == ["ann", "ann"]

    run(scenario)


def test_sizes_are_checked_before_decoding_and_garbage_is_invalid_argument() -> None:
    async def scenario(channel, calls):  # type: ignore[no-untyped-def]
        big = feed_pb2.PostRequest(author="ann", text="x" * 2000).SerializeToString()
        try:
            await channel.unary_unary(FEED)(big)
            raise AssertionError("an oversized request was answered")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "at most 1,024" in (exc.details() or "")
        assert await status(channel, FEED, b"\xff\xff\xff") == grpc.StatusCode.INVALID_ARGUMENT
        assert calls == []

    run(scenario)


def test_a_client_with_an_older_map_is_told_the_newer_epoch_and_health_stays_open() -> None:
    async def scenario(channel, calls):  # type: ignore[no-untyped-def]
        ok = feed_pb2.PostRequest(author="ann").SerializeToString()
        call = channel.unary_unary(FEED)(ok, metadata=((MAP_EPOCH_KEY, "3"),))
        await call
        assert (MAP_EPOCH_KEY, "5") in tuple(await call.trailing_metadata())
        current = channel.unary_unary(FEED)(ok, metadata=((MAP_EPOCH_KEY, "5"),))
        await current
        assert not any(k == MAP_EPOCH_KEY for k, _ in (await current.trailing_metadata()) or ())
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    run(scenario)
