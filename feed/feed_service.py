"""feedring.v1.Feed: the public API. Each method validates, delegates, and encodes.

The flows live beside it: follows.py (follow, unfollow), posts.py (post, delete), timeline.py
(home timeline merge) and salted_reads.py (a user's posts and followers over its salted keys).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from common import post_bytes
from common.config import ClusterConfig
from common.errors import InvalidArgument, NotFound
from common.grpc_status import SALT_BUCKETS_KEY, grpc_errors, grpc_errors_stream
from common.hot_state import HotState
from common.storage_client import StorageClient
from feed import page_tokens
from feed.follows import Follows
from feed.hot_users import HotUsers
from feed.posts import Posts
from feed.relations import Relations
from feed.routing_map import RoutingMaps
from feed.salted_reads import SaltedReads
from feed.timeline import TimelineReader
from feed.timeline_watch import TimelineWatch
from feed.validation import check_request_id, check_text, check_user, page_size
from protos import feed_pb2, feed_pb2_grpc, storage_pb2

__all__ = ["FeedServicer", "TIMELINE", "USER_POSTS", "FOLLOWERS", "FOLLOWING", "MUTED", "BLOCKED"]

MAX_ORDER_HOLD_MS = 60_000  # WatchTimelineRequest.order_hold_ms

# Listing kinds, bound into page tokens so one listing's token cannot page another.
TIMELINE, USER_POSTS, FOLLOWERS, FOLLOWING, MUTED, BLOCKED = 1, 2, 3, 4, 5, 6


class FeedServicer(feed_pb2_grpc.FeedServicer):
    def __init__(
        self,
        config: ClusterConfig,
        storage: StorageClient,
        hot: HotUsers,
        reads: SaltedReads,
        follows: Follows,
        relations: Relations,
        posts: Posts,
        timeline: TimelineReader,
        watch: TimelineWatch,
    ) -> None:
        self.limits = config.limits
        self.storage = storage
        self.hot = hot
        self.reads = reads
        self.follows = follows
        self.relations = relations
        self.posts = posts
        self.timeline = timeline
        self.watch = watch
        self.routing_maps = RoutingMaps()

    @grpc_errors
    async def Follow(
        self, request: feed_pb2.FollowRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.FollowResponse:
        follower = check_user(request.follower, "follower")
        followee = check_user(request.followee, "followee")
        if follower == followee:
            raise InvalidArgument(f"{follower} cannot follow themselves")
        return feed_pb2.FollowResponse(created=await self.follows.follow(follower, followee))

    @grpc_errors
    async def Unfollow(
        self, request: feed_pb2.UnfollowRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.UnfollowResponse:
        follower = check_user(request.follower, "follower")
        followee = check_user(request.followee, "followee")
        if follower == followee:
            raise InvalidArgument(f"{follower} cannot unfollow themselves")
        return feed_pb2.UnfollowResponse(removed=await self.follows.unfollow(follower, followee))

    @grpc_errors
    async def Post(self, request: feed_pb2.PostRequest, context: grpc.aio.ServicerContext) -> feed_pb2.Post:
        author = check_user(request.author, "author")
        text = check_text(request.text, self.limits)
        post = await self.posts.post(author, text, check_request_id(request.request_id))
        if self.hot.state(author) is HotState.HOT:  # where the author's next post is best sent
            buckets = (SALT_BUCKETS_KEY, str(self.posts.buckets))
            context.set_trailing_metadata((*(context.trailing_metadata() or ()), buckets))
        return post

    @grpc_errors
    async def DeletePost(
        self, request: feed_pb2.DeletePostRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.DeletePostResponse:
        author = check_user(request.author, "author")
        if request.post_id == 0:
            raise InvalidArgument("post_id is required")
        await self.posts.delete(author, request.post_id)
        return feed_pb2.DeletePostResponse()

    @grpc_errors
    async def GetTimeline(
        self, request: feed_pb2.GetTimelineRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.EncodedPostPage:
        """Answers with the stored bytes of the posts (an EncodedPostPage is a PostPage on the wire)."""
        user = check_user(request.user)
        size = page_size(request.page_size, self.limits)
        before = page_tokens.decode_post_cursor(TIMELINE, user, request.page_token)
        newer_than = request.newer_than_id
        page = self._encoded_page(TIMELINE, user, await self.timeline.read(user, size + 1, before, newer_than), size)
        page.gap = bool(newer_than and page.next_page_token)  # more is newer than the page holds
        return page

    @grpc_errors_stream
    async def WatchTimeline(
        self, request: feed_pb2.WatchTimelineRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[feed_pb2.TimelineEvent]:
        """The timeline's changes (feed/timeline_watch.py). A reader that takes no event for
        limits.watch_stall_s is cut off (RESOURCE_EXHAUSTED, to resume with after_id): what it
        has not read costs this process a bounded HTTP/2 window, and no more."""
        user = check_user(request.user)
        if request.order_hold_ms > MAX_ORDER_HOLD_MS:
            raise InvalidArgument(f"order_hold_ms must be at most {MAX_ORDER_HOLD_MS} (got {request.order_hold_ms})")
        loop = asyncio.get_running_loop()
        aborts: set[asyncio.Future[None]] = set()
        last = request.after_id

        def stalled() -> None:
            details = (
                f"the watcher of {user}'s timeline took no event for {self.limits.watch_stall_s:g} s: "
                f"resume with after_id={last}"
            )

            async def abort() -> None:
                # From a task of its own: the handler's is stuck in a write the reader does not take.
                # The stream's slot is given back first (the events are suspended at the event the
                # reader did not take), so a reader told to resume finds it free; the status needs
                # no flow-control window, so the reader gets it, and the write fails.
                with contextlib.suppress(Exception):
                    await events.aclose()
                with contextlib.suppress(Exception):
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, details)

            aborts.add(task := asyncio.ensure_future(abort()))
            task.add_done_callback(aborts.discard)

        events = self.watch.events(user, request.after_id, request.order_hold_ms)
        async for event in events:
            timer = loop.call_later(self.limits.watch_stall_s, stalled)
            try:
                yield event
            finally:
                timer.cancel()
            if event.HasField("post"):
                last = max(last, event.post.id)

    @grpc_errors
    async def GetUserPosts(
        self, request: feed_pb2.GetUserPostsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.EncodedPostPage:
        """Answers with the stored bytes of the posts, as GetTimeline does."""
        author = check_user(request.author, "author")
        size = page_size(request.page_size, self.limits)
        before = page_tokens.decode_post_cursor(USER_POSTS, author, request.page_token)
        posts = await self.reads.raw_posts(author, self.hot.state(author), size + 1, before)
        return self._encoded_page(USER_POSTS, author, posts, size)

    @staticmethod
    def _encoded_page(listing: int, user: str, posts: list[bytes], size: int) -> storage_pb2.EncodedPostPage:
        """`posts` (encoded, as stored) was read with one extra entry: its presence says whether a
        next page exists. An EncodedPostPage is a PostPage on the wire."""
        page = storage_pb2.EncodedPostPage(posts=posts[:size])
        if len(posts) > size:
            page.next_page_token = page_tokens.encode_post_cursor(listing, user, post_bytes.post_id(posts[size - 1]))
        return page

    @grpc_errors
    async def ListFollowers(
        self, request: feed_pb2.ListFollowersRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.UserPage:
        user = check_user(request.user)
        size = page_size(request.page_size, self.limits)
        after = page_tokens.decode_user_cursor(FOLLOWERS, user, request.page_token)
        users = await self.reads.followers(user, self.hot.state(user), after, size + 1)
        return self._user_page(FOLLOWERS, user, users, size)

    @grpc_errors
    async def ListFollowing(
        self, request: feed_pb2.ListFollowingRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.UserPage:
        user = check_user(request.user)
        size = page_size(request.page_size, self.limits)
        after = page_tokens.decode_user_cursor(FOLLOWING, user, request.page_token)
        read = await self.storage.list_edges.by_key(
            user,
            storage_pb2.ListEdgesRequest(direction=storage_pb2.FOLLOWING, user_key=user, after=after, limit=size + 1),
        )
        return self._user_page(FOLLOWING, user, list(read.users), size)

    # -- mutes and blocks (feed/relations.py) -------------------------------------------------------

    @grpc_errors
    async def Mute(self, request: feed_pb2.MuteRequest, context: grpc.aio.ServicerContext) -> feed_pb2.MuteResponse:
        user, target = _pair(request.user, request.target, "mute")
        return feed_pb2.MuteResponse(changed=await self.relations.mute(user, target, True))

    @grpc_errors
    async def Unmute(
        self, request: feed_pb2.UnmuteRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.UnmuteResponse:
        user, target = _pair(request.user, request.target, "unmute")
        return feed_pb2.UnmuteResponse(changed=await self.relations.mute(user, target, False))

    @grpc_errors
    async def Block(self, request: feed_pb2.BlockRequest, context: grpc.aio.ServicerContext) -> feed_pb2.BlockResponse:
        user, target = _pair(request.user, request.target, "block")
        return feed_pb2.BlockResponse(changed=await self.relations.block(user, target))

    @grpc_errors
    async def Unblock(
        self, request: feed_pb2.UnblockRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.UnblockResponse:
        user, target = _pair(request.user, request.target, "unblock")
        return feed_pb2.UnblockResponse(changed=await self.relations.unblock(user, target))

    @grpc_errors
    async def ListMuted(
        self, request: feed_pb2.ListMutedRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.UserPage:
        return await self._relation_page(MUTED, storage_pb2.MUTED, request)

    @grpc_errors
    async def ListBlocked(
        self, request: feed_pb2.ListBlockedRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.UserPage:
        return await self._relation_page(BLOCKED, storage_pb2.BLOCKED, request)

    async def _relation_page(
        self,
        listing: int,
        direction: storage_pb2.EdgeDirection,
        request: feed_pb2.ListMutedRequest | feed_pb2.ListBlockedRequest,
    ) -> feed_pb2.UserPage:
        user = check_user(request.user)
        size = page_size(request.page_size, self.limits)
        after = page_tokens.decode_user_cursor(listing, user, request.page_token)
        return self._user_page(listing, user, await self.relations.listed(user, direction, after, size + 1), size)

    @staticmethod
    def _user_page(listing: int, user: str, users: list[str], size: int) -> feed_pb2.UserPage:
        page = feed_pb2.UserPage(users=users[:size])
        if len(users) > size:
            page.next_page_token = page_tokens.encode_user_cursor(listing, user, users[size - 1])
        return page

    @grpc_errors
    async def GetUser(self, request: feed_pb2.GetUserRequest, context: grpc.aio.ServicerContext) -> feed_pb2.User:
        user = check_user(request.user)
        meta = await self.storage.get_user_meta.by_key(user, storage_pb2.GetUserMetaRequest(user_key=user))
        if not meta.found:
            raise NotFound(f"user {user} not found: they have never posted, followed or been followed")
        state = HotState(meta.state)
        self.hot.learn(user, state)
        post_count = meta.post_count + (await self.reads.salted_post_count(user) if state.salted else 0)
        return feed_pb2.User(
            user=user,
            follower_count=meta.follower_count,
            following_count=meta.following_count,
            post_count=post_count,
            hot=state.is_hot,
        )

    @grpc_errors
    async def GetRoutingMap(
        self, request: feed_pb2.GetRoutingMapRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.RoutingMap:
        return self.routing_maps.of(self.storage.map)


def _pair(user: str, target: str, verb: str) -> tuple[str, str]:
    user, target = check_user(user), check_user(target, "target")
    if user == target:
        raise InvalidArgument(f"{user} cannot {verb} themselves")
    return user, target
