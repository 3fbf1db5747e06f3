"""feedring's one error model.

Every failure a user can see is a ``FeedringError`` carrying the gRPC status code it travels as.
Servers turn them into a status (``grpc_errors.abort_with``); the client turns a status back into
the same class (``client.errors``), so code on both sides catches the same names::

    FeedringError
    ├── InvalidArgument      INVALID_ARGUMENT     the request itself is wrong; do not retry
    ├── NotFound             NOT_FOUND            the user or post does not exist
    ├── FailedPrecondition   FAILED_PRECONDITION  the cluster's state forbids it now
    │   └── WrongEpoch                            a node does not own the partition (stale map)
    ├── Unavailable          UNAVAILABLE          a node or router cannot be reached; retriable
    ├── DeadlineExceeded     DEADLINE_EXCEEDED    no answer in time; retriable
    └── Internal             INTERNAL             a bug; logged with its traceback on the server
"""

from __future__ import annotations

import grpc

__all__ = [
    "FeedringError",
    "InvalidArgument",
    "NotFound",
    "FailedPrecondition",
    "WrongEpoch",
    "Unavailable",
    "DeadlineExceeded",
    "Internal",
    "EPOCH_METADATA_KEY",
    "error_for_status",
]

# Trailing metadata a node attaches to a WrongEpoch refusal: its own cluster-map epoch.
EPOCH_METADATA_KEY = "feedring-epoch"


class FeedringError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    retriable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(FeedringError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(FeedringError):
    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(FeedringError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class WrongEpoch(FailedPrecondition):
    """A node refused a key whose partition it does not own; the caller's map is stale."""

    def __init__(self, message: str, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch


class Unavailable(FeedringError):
    code = grpc.StatusCode.UNAVAILABLE
    retriable = True


class DeadlineExceeded(FeedringError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    retriable = True


class Internal(FeedringError):
    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[FeedringError]] = {
    cls.code: cls for cls in (InvalidArgument, NotFound, FailedPrecondition, Unavailable, DeadlineExceeded, Internal)
}


def error_for_status(
    code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, str | bytes], ...] = ()
) -> FeedringError:
    """The FeedringError a received gRPC status stands for."""
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        for key, value in trailing:
            if key == EPOCH_METADATA_KEY:
                return WrongEpoch(details, int(value))
    cls = _BY_CODE.get(code)
    if cls is None:
        err = FeedringError(details or code.name)
        err.code = code
        return err
    return cls(details)
