"""What a router accepts: requests no bigger than their method can legitimately need, and a bounded
number of calls in flight, so neither an oversized request nor a burst can grow its memory without
bound.

- Server-wide, gRPC itself refuses a message over MAX_REQUEST_BYTES (RESOURCE_EXHAUSTED) before any
  of it reaches Python, and answers at most `limits.max_concurrent_rpcs` calls at once (the rest:
  RESOURCE_EXHAUSTED at once, for the client to retry). No per-connection HTTP/2 stream limit:
  measured, a client that opens streams before it has the server's settings gets them reset
  (UNAVAILABLE, REFUSED_STREAM), a less clear answer for no gain in memory. Worst case held in requests:
  max_concurrent_rpcs x MAX_REQUEST_BYTES (1,024 x 256 KiB = 256 MiB), typically kilobytes.
- Per method, `RequestSizeInterceptor` refuses a request bigger than its method's limit with
  RESOURCE_EXHAUSTED naming both sizes, before decoding it: a BulkFollow chunk up to
  MAX_REQUEST_BYTES (FeedClient splits bigger loads); anything else a few ids and a page token.
  A Post may be as big as any request: a text over limits.post_max_bytes is the user's mistake
  whatever its size, and gets the same INVALID_ARGUMENT from validation (feed/validation.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from common.config import ClusterConfig
from common.errors import ResourceExhausted
from common.server_options import pending_calls_options

__all__ = [
    "MAX_REQUEST_BYTES",
    "RequestSizeInterceptor",
    "method_limits",
    "server_options",
]

MAX_REQUEST_BYTES = 256 << 10  # the largest legitimate request: a BulkFollow chunk
MAX_REPLY_BYTES = 16 << 20  # the largest reply: a status of many nodes, a page of 200 long posts
SMALL_REQUEST_BYTES = 16 << 10  # user ids (<= 64 bytes), page sizes, page tokens, node addresses


def server_options() -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
        ("grpc.max_send_message_length", MAX_REPLY_BYTES),
        *pending_calls_options(),
    ]


def method_limits(config: ClusterConfig) -> dict[str, tuple[int, str]]:
    """Full method name -> the largest request it accepts and why (others: SMALL_REQUEST_BYTES)."""
    return {
        "/feedring.v1.Feed/Post": (
            MAX_REQUEST_BYTES,
            f"a post's text is at most {config.limits.post_max_bytes:,} UTF-8 bytes (limits.post_max_bytes)",
        ),
        "/feedring.v1.Admin/BulkFollow": (
            MAX_REQUEST_BYTES,
            "send edges in chunks (FeedClient.bulk_follow splits them)",
        ),
    }


class _Oversized:
    """What the size-checking deserializer hands on instead of a decoded request."""

    def __init__(self, size: int) -> None:
        self.size = size


class RequestSizeInterceptor(grpc.aio.ServerInterceptor):
    """Refuses a unary request over its method's limit with RESOURCE_EXHAUSTED, without decoding it."""

    def __init__(self, limits: dict[str, tuple[int, str]]) -> None:
        self.limits = limits

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        full_method = handler_call_details.method
        limit, why = self.limits.get(full_method, (SMALL_REQUEST_BYTES, "it carries only ids and a page token"))
        decode = handler.request_deserializer

        def deserialize(raw: bytes) -> Any:
            return _Oversized(len(raw)) if len(raw) > limit else decode(raw)

        def refuse(request: _Oversized) -> ResourceExhausted:
            name = full_method.rsplit("/", 1)[-1]
            return ResourceExhausted(f"{name} request is {request.size:,} bytes; at most {limit:,} are accepted: {why}")

        if handler.response_streaming:
            inner_stream = handler.unary_stream

            async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if isinstance(request, _Oversized):
                    refusal = refuse(request)
                    await context.abort(refusal.code, refusal.message)
                async for item in inner_stream(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(streaming, deserialize, handler.response_serializer)

        inner = handler.unary_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, _Oversized):
                refusal = refuse(request)
                await context.abort(refusal.code, refusal.message)
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, deserialize, handler.response_serializer)
