"""gRPC status <-> feedring errors, both directions, in one place.

Serving: ``@grpc_errors`` on a unary method and ``@grpc_errors_stream`` on a server-streaming one
turn a ``FeedringError`` into its own status and message (a WrongEpoch also carries the node's
epoch in the trailing metadata ``feedring-epoch``). Anything else is a bug: logged with its
traceback, answered INTERNAL, and the server keeps serving.

Calling: ``feedring_errors()`` around a call re-raises a ``grpc.RpcError`` as the matching
``FeedringError``, ``from`` the gRPC error so the cause stays in the traceback. A caller that knows
whom it called passes ``describe``, which may reword the failures gRPC itself reports (cannot
connect, no answer in time) so the message names the process, e.g. ``node n2 (127.0.0.1:7102) is
unavailable``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from common.errors import BY_STATUS_CODE, FeedringError, ReplicaBehind, WrongEpoch

__all__ = [
    "EPOCH_METADATA_KEY",
    "BEHIND_KEY",
    "LAST_RESORT_KEY",
    "MAP_EPOCH_KEY",
    "SALT_BUCKETS_KEY",
    "RpcStatus",
    "grpc_errors",
    "grpc_errors_stream",
    "feedring_errors",
    "error_for_status",
    "status_of",
]

log = logging.getLogger(__name__)

# Trailing metadata a node attaches to a WrongEpoch refusal: its own cluster-map epoch.
EPOCH_METADATA_KEY = "feedring-epoch"
# A map-aware client sends the epoch of its routing map; an answer from a process with a newer map
# carries that epoch back in the trailing metadata, and the client fetches the new map
# (feed/public_server.py, client/map_aware.py).
MAP_EPOCH_KEY = "feedring-map-epoch"
# A Post whose author's posts are spread over salted keys (a hot author) answers with this trailing
# key and the number of salts S: a map-aware client sends that author's next Post, whose request_id
# picks the salt (common/salting.py request_salt), to the salted key's primary, which stores it
# without forwarding it on (client/attempts.py).
SALT_BUCKETS_KEY = "feedring-salt-buckets"
NO_RETRY_KEY = "grpc-retry-pushback-ms"  # negative: the client's retry policy stops (gRFC A6)
# A replica that may lack writes refuses a read with this trailing key (ReplicaBehind); a caller
# that found no other replica asks again with LAST_RESORT_KEY in its metadata, and is answered.
BEHIND_KEY = "feedring-replica-behind"
LAST_RESORT_KEY = "feedring-last-resort"

R = TypeVar("R")

# -- serving ---------------------------------------------------------------------------------------


async def _abort(context: grpc.aio.ServicerContext, exc: Exception, method: str) -> None:
    """Ends the call with the status `exc` stands for (always raises)."""
    if isinstance(exc, FeedringError):
        if isinstance(exc, WrongEpoch):
            context.set_trailing_metadata(((EPOCH_METADATA_KEY, str(exc.epoch)),))
        elif isinstance(exc, ReplicaBehind):
            context.set_trailing_metadata(((BEHIND_KEY, str(exc.complete_since_ms)), (NO_RETRY_KEY, "-1")))
        elif exc.code == grpc.StatusCode.UNAVAILABLE:
            # Our own answer (e.g. a write short of its quorum), not a lost connection: a caller's
            # gRPC retry policy must not resend it (measured: three re-coordinated writes ate a
            # router's whole attempt budget on the minority side of a partition).
            context.set_trailing_metadata(((NO_RETRY_KEY, "-1"),))
        await context.abort(exc.code, exc.message)
    if isinstance(exc, (grpc.aio.AbortError, AssertionError)):
        raise exc  # already a status (an abort), or a failed test assertion
    log.error("unexpected error in %s", method, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see the server log")


def grpc_errors(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """For a unary handler: a servicer method (self, request, context) or a function (request, context)."""

    @functools.wraps(method)
    async def wrapper(*args: Any) -> R:
        try:
            return await method(*args)
        except Exception as exc:
            await _abort(args[-1], exc, method.__name__)
        raise AssertionError("unreachable")  # _abort() always raises

    return wrapper


def grpc_errors_stream(method: Callable[..., AsyncIterator[R]]) -> Callable[..., AsyncIterator[R]]:
    """For a server-streaming handler: an error after some messages ends the stream with it."""

    @functools.wraps(method)
    async def wrapper(*args: Any) -> AsyncIterator[R]:
        try:
            async for item in method(*args):
                yield item
        except Exception as exc:
            await _abort(args[-1], exc, method.__name__)

    return wrapper


# -- calling ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RpcStatus:
    """What a failed call reported: its code, details and trailing metadata."""

    code: grpc.StatusCode
    details: str
    trailing: tuple[tuple[str, str | bytes], ...] = ()

    @property
    def from_channel(self) -> bool:
        """gRPC's own words for a failure of the connection, not a status a server chose to send.
        Matched as prefixes: a server's UNAVAILABLE starts with feedring's words instead."""
        return self.code == grpc.StatusCode.UNAVAILABLE and self.details.lower().startswith(_CHANNEL_FAILURES)

    @property
    def own_deadline(self) -> bool:
        """The caller's deadline expired (servers word their own deadlines)."""
        return self.code == grpc.StatusCode.DEADLINE_EXCEEDED and self.details.lower() == "deadline exceeded"


_CHANNEL_FAILURES = (
    "failed to connect to all addresses",
    "errors resolving",
    "dns resolution failed",
    "socket closed",
    "connection reset",
    "connection refused",
    "broken pipe",
)


def status_of(exc: grpc.RpcError) -> RpcStatus:
    # grpc.RpcError itself has no code(); what a channel raises is also a grpc.Call (or aio's error).
    if isinstance(exc, (grpc.Call, grpc.aio.AioRpcError)):
        return RpcStatus(exc.code(), exc.details() or "", tuple(exc.trailing_metadata() or ()))
    return RpcStatus(grpc.StatusCode.UNKNOWN, str(exc))


def error_for_status(status: RpcStatus) -> FeedringError:
    """The FeedringError a received status stands for."""
    if status.code == grpc.StatusCode.FAILED_PRECONDITION:
        for key, value in status.trailing:
            if key == EPOCH_METADATA_KEY:
                return WrongEpoch(status.details, int(value))
    if status.code == grpc.StatusCode.UNAVAILABLE:
        for key, value in status.trailing:
            if key == BEHIND_KEY:
                return ReplicaBehind(status.details, int(value) if value.isdigit() else 0)
    cls = BY_STATUS_CODE.get(status.code)
    if cls is None:
        err = FeedringError(status.details or status.code.name)
        err.code = status.code
        return err
    return cls(status.details)


@contextmanager
def feedring_errors(describe: Callable[[RpcStatus], FeedringError | None] | None = None) -> Iterator[None]:
    """Re-raises a grpc.RpcError from the body as a FeedringError, ``from`` the original.

    `describe` may return a better-worded error for a status (or None to keep the default)."""
    try:
        yield
    except grpc.RpcError as exc:
        status = status_of(exc)
        raise ((describe(status) if describe else None) or error_for_status(status)) from exc
