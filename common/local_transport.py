"""A Transport that reaches this process's own node in process: no gRPC, no protobuf round trip.

A node is also a Feed API coordinator (node/feed_api.py) and calls storage nodes through the same
typed client routers use (common/storage_client.py). Calls to its own address go straight to its
Storage handlers with the request object, and the reply object comes back as is; calls to any other
address go through the wrapped transport (gRPC). A handler's refusal (a FeedringError it turned into
a status with ``context.abort``) comes back as the same ``grpc.aio.AioRpcError`` a channel raises, so
the caller's error translation is the one it uses for remote calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from common.grpc_status import LAST_RESORT_KEY

__all__ = ["LocalFirstTransport", "LocalContext", "rpc_error", "call_unary", "call_stream"]

Resp = TypeVar("Resp", bound=Message)


class _Aborted(grpc.aio.AbortError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, str], ...]) -> None:
        super().__init__(details)
        self.code, self.details, self.trailing = code, details, trailing


class LocalContext:
    """The parts of grpc.aio.ServicerContext feedring's Storage handlers use."""

    def __init__(self, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.metadata = metadata  # what a channel's caller would have sent
        self.trailing: tuple[tuple[str, str], ...] = ()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.trailing = tuple(metadata)

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise _Aborted(code, details, self.trailing)


def rpc_error(code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, str], ...] = ()) -> grpc.aio.AioRpcError:
    """The error a channel would raise for this status."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details)


async def call_unary(handler: Any, request: Message, metadata: tuple[tuple[str, str], ...] = ()) -> Any:
    """Calls a unary handler in process; a refusal is raised as a channel's error."""
    try:
        return await handler(request, LocalContext(metadata))
    except _Aborted as exc:
        raise rpc_error(exc.code, exc.details, exc.trailing) from None


async def call_stream(handler: Any, request: Message) -> AsyncIterator[Any]:
    """Calls a server-streaming handler in process; a refusal is raised as a channel's error."""
    try:
        async for item in handler(request, LocalContext()):
            yield item
    except _Aborted as exc:
        raise rpc_error(exc.code, exc.details, exc.trailing) from None


class LocalFirstTransport:
    def __init__(self, remote: Any) -> None:
        self.remote = remote  # a Transport (common/storage_client.py) for every other address
        self._local: dict[str, Mapping[str, Any]] = {}

    def serve_locally(self, address: str, handlers: Mapping[str, Any]) -> None:
        """Calls to `address` go to `handlers` (method name -> handler(request, context)) from now on."""
        self._local[address] = handlers

    async def unary(
        self,
        address: str,
        method: str,
        request: Message,
        response: type[Resp],
        timeout_s: float,
        wait: bool,
        last_resort: bool = False,
    ) -> Resp:
        handlers = self._local.get(address)
        if handlers is None:
            reply: Resp = await self.remote.unary(address, method, request, response, timeout_s, wait, last_resort)
            return reply
        local: Resp = await call_unary(handlers[method], request, ((LAST_RESORT_KEY, "1"),) if last_resort else ())
        return local

    async def stream(
        self, address: str, method: str, request: Message, response: type[Resp], timeout_s: float | None
    ) -> AsyncIterator[Resp]:
        handlers = self._local.get(address)
        items = (
            self.remote.stream(address, method, request, response, timeout_s)
            if handlers is None
            else call_stream(handlers[method], request)
        )
        async for item in items:
            yield item

    async def serving(self, address: str, timeout_s: float, service: str = "") -> bool:
        if address in self._local:
            return True
        serving: bool = await self.remote.serving(address, timeout_s, service)
        return serving

    async def close(self) -> None:
        await self.remote.close()
