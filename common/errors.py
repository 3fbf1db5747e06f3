"""feedring's one error model.

Every failure a user can see is a ``FeedringError`` carrying the gRPC status code it travels as.
common/grpc_status.py turns them into a status on the server and a status back into the same class
on the caller's side, so code on both sides catches the same names::

    FeedringError
    ├── InvalidArgument      INVALID_ARGUMENT     the request itself is wrong; do not retry
    ├── NotFound             NOT_FOUND            the user or post does not exist
    ├── FailedPrecondition   FAILED_PRECONDITION  the cluster's state forbids it now
    │   └── WrongEpoch                            a node does not own the partition (stale map)
    ├── Unavailable          UNAVAILABLE          a node or router cannot be reached; retriable
    ├── DeadlineExceeded     DEADLINE_EXCEEDED    no answer in time; retriable
    ├── Internal             INTERNAL             a bug; logged with its traceback on the server
    ├── Unauthenticated      UNAUTHENTICATED      no or unknown credentials (common/security.py)
    ├── PermissionDenied     PERMISSION_DENIED    credentials that may not make this call
    └── ResourceExhausted    RESOURCE_EXHAUSTED   a request too big, or too many calls at once

Between nodes, a write's outcome on one replica travels as a code number inside an ApplyWrites
reply (storage.proto's WriteResult): ``code_number`` and ``error_for_code`` are the two directions.
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
    "Unauthenticated",
    "PermissionDenied",
    "ResourceExhausted",
    "BY_STATUS_CODE",
    "error_for_code",
]


class FeedringError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    retriable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code_number(self) -> int:
        """The status code as a number (a per-write result on the wire: storage.proto's WriteResult)."""
        return int(self.code.value[0])

    @property
    def epoch_seen(self) -> int:
        """The refusing node's epoch (WrongEpoch), else 0."""
        return 0


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

    @property
    def epoch_seen(self) -> int:
        return self.epoch


class Unavailable(FeedringError):
    code = grpc.StatusCode.UNAVAILABLE
    retriable = True


class ReplicaBehind(Unavailable):
    """A replica that may lack acknowledged writes (restarted and still receiving what it missed, or
    its disk just back) refused a read: the caller reads another replica, and asks this one again,
    as the last resort, only if no other answers (common/storage_client.py). `complete_since_ms`:
    the wall time since which it has every write sent to it (0: not said); of several such
    replicas the one complete the longest has the most recent writes, a caller's own among them."""

    def __init__(self, message: str, complete_since_ms: int = 0) -> None:
        super().__init__(message)
        self.complete_since_ms = complete_since_ms

    @staticmethod
    def least_behind_first(refusals: list[tuple[str, ReplicaBehind]]) -> list[str]:
        """The node ids of (node id, refusal) pairs, the replica complete the longest first."""
        ordered = sorted(refusals, key=lambda r: r[1].complete_since_ms or float("inf"))
        return [node_id for node_id, _ in ordered]


class DeadlineExceeded(FeedringError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    retriable = True


class Internal(FeedringError):
    code = grpc.StatusCode.INTERNAL


class Unauthenticated(FeedringError):
    """No credentials, or ones the cluster does not know (common/security.py)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(FeedringError):
    """Valid credentials that may not make this call (a client token on Admin or Storage)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(FeedringError):
    """A request bigger than its method accepts, or a router already answering its maximum of
    calls (limits.max_concurrent_rpcs: retry later)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


# The class each status code comes back as (common/grpc_status.py).
BY_STATUS_CODE: dict[grpc.StatusCode, type[FeedringError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        FailedPrecondition,
        Unavailable,
        DeadlineExceeded,
        Internal,
        Unauthenticated,
        PermissionDenied,
        ResourceExhausted,
    )
}


def error_for_code(code: int, message: str, epoch: int = 0) -> FeedringError:
    """The error a per-write result's code number stands for (the inverse of ``code_number``). A
    write refused as FAILED_PRECONDITION is always a refusal of the key (not the owner, or sealed for
    a move): it comes back as WrongEpoch, with the refusing node's epoch."""
    if code == grpc.StatusCode.FAILED_PRECONDITION.value[0]:
        return WrongEpoch(message, epoch)
    for status, cls in BY_STATUS_CODE.items():
        if status.value[0] == code:
            return cls(message)
    return FeedringError(message)
