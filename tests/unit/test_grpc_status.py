"""common/grpc_status.py: feedring errors become statuses on a real aio server, and back again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from common.errors import FeedringError, Internal, NotFound, Unavailable, WrongEpoch
from common.grpc_status import RpcStatus, feedring_errors, grpc_errors, grpc_errors_stream


class Echo:
    @grpc_errors
    async def unary(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return _act(request)

    @grpc_errors_stream
    async def stream(self, request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        yield b"first"
        yield _act(request)


def _act(request: bytes) -> bytes:
    if request == b"missing":
        raise NotFound("no such thing")
    if request == b"moved":
        raise WrongEpoch("not mine", 7)
    if request == b"bug":
        raise KeyError("oops")
    return request


def call(payload: bytes, method: str = "unary") -> list[bytes]:
    async def main() -> list[bytes]:
        echo = Echo()
        handler = grpc.method_handlers_generic_handler(
            "t.Echo",
            {
                "Unary": grpc.unary_unary_rpc_method_handler(echo.unary),
                "Stream": grpc.unary_stream_rpc_method_handler(echo.stream),
            },
        )
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with feedring_errors():
                    if method == "unary":
                        return [await channel.unary_unary("/t.Echo/Unary")(payload, timeout=5)]
                    return [m async for m in channel.unary_stream("/t.Echo/Stream")(payload, timeout=5)]
        finally:
            await server.stop(None)

    return asyncio.run(main())


@pytest.mark.parametrize("method", ["unary", "stream"])
def test_errors_cross_the_wire_as_the_same_class_with_their_message(method: str) -> None:
    assert call(b"ok", method)[-1] == b"ok"
    with pytest.raises(NotFound, match="no such thing") as err:
        call(b"missing", method)
    assert isinstance(err.value.__cause__, grpc.RpcError)
    with pytest.raises(WrongEpoch) as moved:
        call(b"moved", method)
    assert moved.value.epoch == 7
    with pytest.raises(Internal, match="internal error in (unary|stream); see the server log"):
        call(b"bug", method)


def test_a_describer_rewords_what_grpc_itself_reports() -> None:
    def describe(status: RpcStatus) -> FeedringError | None:
        return Unavailable(f"cannot reach X: {status.details}") if status.from_channel else None

    async def main() -> None:
        async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
            with feedring_errors(describe):
                await channel.unary_unary("/t.Echo/Unary")(b"", timeout=2)

    with pytest.raises(Unavailable, match="cannot reach X: failed to connect"):
        asyncio.run(main())


def test_a_servers_own_unavailable_is_not_resent_by_the_callers_retry_policy() -> None:
    """Storage channels retry UNAVAILABLE (a lost connection) three times; a node's own UNAVAILABLE
    (a write short of its quorum) was processed, and resending it re-coordinates the write."""
    from common.storage_client import _CHANNEL_OPTIONS

    calls = 0

    class ShortOfQuorum:
        @grpc_errors
        async def unary(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            nonlocal calls
            calls += 1
            raise Unavailable("reached 1 of the 2 replicas it needs")

    async def main() -> None:
        handler = grpc.method_handlers_generic_handler(
            "feedring.v1.Storage", {"Unary": grpc.unary_unary_rpc_method_handler(ShortOfQuorum().unary)}
        )
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=_CHANNEL_OPTIONS) as channel:
                with pytest.raises(Unavailable, match="reached 1 of the 2"), feedring_errors():
                    await channel.unary_unary("/feedring.v1.Storage/Unary")(b"", timeout=5)
        finally:
            await server.stop(None)

    asyncio.run(main())
    assert calls == 1
