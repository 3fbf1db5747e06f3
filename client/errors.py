"""Client side of the error model: gRPC failures become feedring's own exception classes.

One context manager, used around every call, so callers catch ``NotFound``, ``InvalidArgument``,
``Unavailable``... (common/errors.py draws the whole tree) and never a raw ``grpc.RpcError``. The
server's message is kept as it is, except for the two failures gRPC itself reports about the
router (cannot connect, no answer in time): those name the router's address, so a person reading
``error: ...`` knows which process is down rather than seeing a bare "failed to connect".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from common.errors import DeadlineExceeded, Unavailable, error_for_status

__all__ = ["translate_errors"]

# How gRPC core words a failure of the channel itself (connect, resolve, a dropped connection).
# Matched as prefixes: an UNAVAILABLE *from* the router starts with our own words instead (e.g.
# "node n2 (127.0.0.1:7102) is unavailable: failed to connect ..."), and that one must keep
# blaming the node, not the router.
_CHANNEL_FAILURES = (
    "failed to connect to all addresses",
    "errors resolving",
    "dns resolution failed",
    "socket closed",
    "connection reset",
    "connection refused",
    "broken pipe",
)
# What gRPC says when the caller's own deadline expires (the router words its own deadlines).
_CLIENT_DEADLINE = "deadline exceeded"


@contextmanager
def translate_errors(target: str, timeout_s: float | None = None) -> Iterator[None]:
    """Re-raises a grpc.RpcError from the body as the matching FeedringError (``from`` the original).

    `target` is the router's address and `timeout_s` the call's deadline; both only go into messages.
    """
    try:
        yield
    except grpc.RpcError as exc:
        # grpc.RpcError itself has no code(); the errors a channel raises are also grpc.Call.
        code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = (exc.details() if isinstance(exc, grpc.Call) else "") or ""
        trailing = tuple(exc.trailing_metadata() or ()) if isinstance(exc, grpc.Call) else ()
        lowered = details.lower()
        if code == grpc.StatusCode.UNAVAILABLE and lowered.startswith(_CHANNEL_FAILURES):
            raise Unavailable(f"cannot reach the feedring router at {target}: {details}") from exc
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and lowered == _CLIENT_DEADLINE:
            within = f" within {timeout_s:g}s" if timeout_s is not None else " before the deadline"
            raise DeadlineExceeded(f"the feedring router at {target} did not answer{within}") from exc
        raise error_for_status(code, details, trailing) from exc
