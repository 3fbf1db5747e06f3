"""Every Feed call a client makes, as a value: which RPC, its request, and how to read its reply.

Built here once and sent by either client: FeedClient (blocking) and AsyncFeedClient (asyncio), so
the two cannot drift apart in what they send or what they return. The key that decides where a call
goes is the request's KEY_FIELD (client/routing.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from client.results import Page, Post, User, post_page, user_of, user_page
from client.routing import KEY_FIELD
from protos import admin_pb2, feed_pb2

__all__ = [
    "FeedCall",
    "follow",
    "unfollow",
    "post",
    "delete_post",
    "timeline",
    "user_posts",
    "followers",
    "following",
    "get_user",
    "mute",
    "unmute",
    "block",
    "unblock",
    "muted",
    "blocked",
    "bulk_follow_requests",
    "repair_request",
    "BULK_CHUNK_BYTES",
]

T = TypeVar("T")
BULK_CHUNK_BYTES = 192 << 10  # per BulkFollow request: under the router's 256 KiB limit, with room


@dataclass(frozen=True)
class FeedCall(Generic[T]):
    method: str  # the Feed RPC
    request: Any
    result: Callable[[Any], T]  # the caller's value, from the reply

    @property
    def key(self) -> str:
        return str(getattr(self.request, KEY_FIELD[self.method]))


def follow(follower: str, followee: str) -> FeedCall[bool]:
    request = feed_pb2.FollowRequest(follower=follower, followee=followee)
    return FeedCall("Follow", request, lambda r: bool(r.created))


def unfollow(follower: str, followee: str) -> FeedCall[bool]:
    request = feed_pb2.UnfollowRequest(follower=follower, followee=followee)
    return FeedCall("Unfollow", request, lambda r: bool(r.removed))


def post(author: str, text: str) -> FeedCall[Post]:
    # A fresh request_id: a retry of this call (to another replica) never stores the post twice.
    request = feed_pb2.PostRequest(author=author, text=text, request_id=uuid.uuid4().hex)
    return FeedCall("Post", request, Post.from_proto)


def delete_post(author: str, post_id: int) -> FeedCall[None]:
    request = feed_pb2.DeletePostRequest(author=author, post_id=post_id)
    return FeedCall("DeletePost", request, lambda r: None)


def timeline(user: str, page_size: int, page_token: str, newer_than_id: int = 0) -> FeedCall[Page[Post]]:
    request = feed_pb2.GetTimelineRequest(
        user=user, page_size=page_size, page_token=page_token, newer_than_id=newer_than_id
    )
    return FeedCall("GetTimeline", request, post_page)


def user_posts(author: str, page_size: int, page_token: str) -> FeedCall[Page[Post]]:
    request = feed_pb2.GetUserPostsRequest(author=author, page_size=page_size, page_token=page_token)
    return FeedCall("GetUserPosts", request, post_page)


def followers(user: str, page_size: int, page_token: str) -> FeedCall[Page[str]]:
    request = feed_pb2.ListFollowersRequest(user=user, page_size=page_size, page_token=page_token)
    return FeedCall("ListFollowers", request, user_page)


def following(user: str, page_size: int, page_token: str) -> FeedCall[Page[str]]:
    request = feed_pb2.ListFollowingRequest(user=user, page_size=page_size, page_token=page_token)
    return FeedCall("ListFollowing", request, user_page)


def get_user(user: str) -> FeedCall[User]:
    return FeedCall("GetUser", feed_pb2.GetUserRequest(user=user), user_of)


def mute(user: str, target: str) -> FeedCall[bool]:
    return FeedCall("Mute", feed_pb2.MuteRequest(user=user, target=target), lambda r: bool(r.changed))


def unmute(user: str, target: str) -> FeedCall[bool]:
    return FeedCall("Unmute", feed_pb2.UnmuteRequest(user=user, target=target), lambda r: bool(r.changed))


def block(user: str, target: str) -> FeedCall[bool]:
    return FeedCall("Block", feed_pb2.BlockRequest(user=user, target=target), lambda r: bool(r.changed))


def unblock(user: str, target: str) -> FeedCall[bool]:
    return FeedCall("Unblock", feed_pb2.UnblockRequest(user=user, target=target), lambda r: bool(r.changed))


def muted(user: str, page_size: int, page_token: str) -> FeedCall[Page[str]]:
    request = feed_pb2.ListMutedRequest(user=user, page_size=page_size, page_token=page_token)
    return FeedCall("ListMuted", request, user_page)


def blocked(user: str, page_size: int, page_token: str) -> FeedCall[Page[str]]:
    request = feed_pb2.ListBlockedRequest(user=user, page_size=page_size, page_token=page_token)
    return FeedCall("ListBlocked", request, user_page)


def bulk_follow_requests(edges: list[tuple[str, str]]) -> Iterator[admin_pb2.BulkFollowRequest]:
    """The edges as BulkFollow requests of at most BULK_CHUNK_BYTES each (an edge costs its two
    UTF-8 ids plus ~8 bytes of framing); one empty request for no edges."""
    chunk: list[tuple[str, str]] = []
    size = 0
    for follower, followee in edges:
        cost = len(follower.encode()) + len(followee.encode()) + 8
        if chunk and size + cost > BULK_CHUNK_BYTES:
            yield _bulk(chunk)
            chunk, size = [], 0
        chunk.append((follower, followee))
        size += cost
    if chunk or not edges:
        yield _bulk(chunk)


def _bulk(chunk: list[tuple[str, str]]) -> admin_pb2.BulkFollowRequest:
    return admin_pb2.BulkFollowRequest(edges=[admin_pb2.FollowEdge(follower=a, followee=b) for a, b in chunk])


def repair_request(node_id: str, partition: int | None, max_keys_per_second: int) -> admin_pb2.RepairClusterRequest:
    request = admin_pb2.RepairClusterRequest(node_id=node_id, max_keys_per_second=max_keys_per_second)
    if partition is not None:
        request.partition = partition
    return request
