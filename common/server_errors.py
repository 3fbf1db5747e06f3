"""Server side of the error model: one decorator turns exceptions into gRPC status.

A ``FeedringError`` becomes its own status and message (a WrongEpoch also carries the node's epoch
in trailing metadata). Anything else is a bug: it is logged with its traceback and the caller gets
INTERNAL, and the server keeps serving.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from common.errors import EPOCH_METADATA_KEY, FeedringError, WrongEpoch

__all__ = ["grpc_errors"]

log = logging.getLogger(__name__)

R = TypeVar("R")


def grpc_errors(
    method: Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[R]],
) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[R]]:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await method(self, request, context)
        except FeedringError as exc:
            if isinstance(exc, WrongEpoch):
                context.set_trailing_metadata(((EPOCH_METADATA_KEY, str(exc.epoch)),))
            await context.abort(exc.code, exc.message)
        except (grpc.aio.AbortError, AssertionError):
            raise
        except Exception:
            log.exception("unexpected error in %s", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method.__name__}; see the server log")
        raise AssertionError("unreachable")  # abort() always raises

    return wrapper
