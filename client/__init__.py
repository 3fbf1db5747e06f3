"""The Python client of feedring: FeedClient, its result types, and the error classes."""

from client.feed_client import ClusterStatus, FeedClient, HotUser, NodeHealth, Page, Post, RouterStats, User
from common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    FeedringError,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
    WrongEpoch,
)

__all__ = [
    "FeedClient",
    "Post",
    "Page",
    "User",
    "NodeHealth",
    "HotUser",
    "RouterStats",
    "ClusterStatus",
    "FeedringError",
    "InvalidArgument",
    "NotFound",
    "FailedPrecondition",
    "WrongEpoch",
    "Unavailable",
    "DeadlineExceeded",
    "Internal",
]
