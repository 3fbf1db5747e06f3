"""Client side of the error model: gRPC failures become feedring's own exception classes.

One context manager, used around every call, so callers catch ``NotFound``, ``InvalidArgument``,
``Unavailable``... (common/errors.py draws the whole tree) and never a raw ``grpc.RpcError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from common.errors import FeedringError, Unavailable, error_for_status

__all__ = ["translate_errors"]


@contextmanager
def translate_errors(target: str) -> Iterator[None]:
    try:
        yield
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = (exc.details() if hasattr(exc, "details") else "") or ""
        trailing = tuple(exc.trailing_metadata() or ()) if hasattr(exc, "trailing_metadata") else ()
        if code == grpc.StatusCode.UNAVAILABLE and _is_connection_failure(details):
            raise Unavailable(f"cannot reach the feedring router at {target}: {details}") from exc
        err: FeedringError = error_for_status(code, details, trailing)
        raise err from exc


def _is_connection_failure(details: str) -> bool:
    """The router itself is down (as opposed to the router reporting a node down)."""
    lowered = details.lower()
    return "failed to connect" in lowered or "connection refused" in lowered or "dns resolution" in lowered
