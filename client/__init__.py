"""The Python client of feedring: FeedClient (blocking), AsyncFeedClient (asyncio), their result
types, and the error classes.

The error classes are common/errors.py's own, so code catching ``client.NotFound`` also catches what
a server raised as ``common.errors.NotFound``.
"""

from client.async_client import AsyncFeedClient
from client.feed_client import (
    ChangeProgress,
    ClusterMap,
    ClusterStatus,
    DeliveryStats,
    FeedClient,
    HotUser,
    NodeHealth,
    Page,
    Post,
    Removed,
    RouterStats,
    User,
)
from common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    FeedringError,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    WrongEpoch,
)

__all__ = [
    "FeedClient",
    "AsyncFeedClient",
    "Post",
    "Removed",
    "Page",
    "User",
    "NodeHealth",
    "DeliveryStats",
    "HotUser",
    "RouterStats",
    "ChangeProgress",
    "ClusterStatus",
    "ClusterMap",
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
]
