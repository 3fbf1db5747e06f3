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

from common.errors import DeadlineExceeded, FeedringError, Unavailable
from common.grpc_status import RpcStatus, feedring_errors

__all__ = ["translate_errors"]


@contextmanager
def translate_errors(target: str, timeout_s: float | None = None, tls: bool | None = None) -> Iterator[None]:
    """Re-raises a grpc.RpcError from the body as the matching FeedringError (``from`` the original).

    `target` is the router's address and `timeout_s` the call's deadline; both only go into messages.
    An UNAVAILABLE *from* the router (e.g. "node n2 (127.0.0.1:7102) is unavailable: ...") keeps
    blaming the node, not the router.
    """

    def describe(status: RpcStatus) -> FeedringError | None:
        if status.from_channel or _handshake_failed(status):
            return Unavailable(
                f"cannot reach the feedring router at {target}: {status.details}{_tls_hint(status, tls)}"
            )
        if status.own_deadline:
            within = f" within {timeout_s:g}s" if timeout_s is not None else " before the deadline"
            return DeadlineExceeded(f"the feedring router at {target} did not answer{within}")
        return None

    with feedring_errors(describe):
        yield


def _handshake_failed(status: RpcStatus) -> bool:
    return status.code == grpc.StatusCode.UNAVAILABLE and "handshake" in status.details.lower()


def _tls_hint(status: RpcStatus, tls: bool | None) -> str:
    """A plaintext client of a TLS router sees its connection closed; a TLS client of a plaintext
    router (or with the wrong CA) sees a failed handshake. Say which setting to look at."""
    details = status.details.lower()
    if tls is False and "refused" not in details:
        return " (if the cluster serves TLS, pass --ca-file or set FEEDRING_CA_FILE)"
    if tls and ("handshake" in details or "ssl" in details or "certificate" in details):
        return " (TLS failed: is the router serving TLS, and is --ca-file the cluster's CA?)"
    return ""
