"""What a router accepts: requests no bigger than their method can legitimately need, and a bounded
number of calls in flight, so neither an oversized request nor a burst can grow its memory without
bound.

- Server-wide, gRPC itself refuses a message over MAX_REQUEST_BYTES (RESOURCE_EXHAUSTED) before any
  of it reaches Python, and answers at most `limits.max_concurrent_rpcs` calls at once (the rest:
  RESOURCE_EXHAUSTED at once, for the client to retry). No per-connection HTTP/2 stream limit:
  measured, a client that opens streams before it has the server's settings gets them reset
  (UNAVAILABLE, REFUSED_STREAM), a less clear answer for no gain in memory. Worst case held in requests:
  max_concurrent_rpcs x MAX_REQUEST_BYTES (1,024 x 256 KiB = 256 MiB), typically kilobytes.
- Per method, the call guards (common/call_guards.py) refuse a request bigger than its method's limit with
  RESOURCE_EXHAUSTED naming both sizes, before decoding it: a BulkFollow chunk up to
  MAX_REQUEST_BYTES (FeedClient splits bigger loads); anything else a few ids and a page token.
  A Post may be as big as any request: a text over limits.post_max_bytes is the user's mistake
  whatever its size, and gets the same INVALID_ARGUMENT from validation (feed/validation.py).
"""

from __future__ import annotations

from typing import Any

from common.config import ClusterConfig
from common.server_options import pending_calls_options

__all__ = [
    "MAX_REQUEST_BYTES",
    "method_sizes",
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


def method_sizes(config: ClusterConfig) -> tuple[dict[str, tuple[int, str]], tuple[int, str]]:
    """The per-method limits and the default for every other method (common/call_guards.py checks
    them, before decoding a request)."""
    return method_limits(config), (SMALL_REQUEST_BYTES, "it carries only ids and a page token")
