"""feedring.v1.Feed: the public API. Each method validates, calls the nodes, and encodes.

Order of steps is what makes concurrent operations safe (see node/feed_store.py for the node side):
- Follow writes the follower-side edge first (so the follower's inbox accepts the followee's posts),
  then the followee-side edge together with a read of the followee's newest posts, then backfills
  those. A concurrent post is either in that read or sees the new follower when it fans out.
- Unfollow removes the followee-side edge first (no new fan-out reaches the follower), then the
  follower-side edge together with the followee's posts in the inbox.
"""

from __future__ import annotations

import logging

import grpc

from common.config import ClusterConfig
from common.errors import InvalidArgument, NotFound
from common.server_errors import grpc_errors
from protos import feed_pb2, feed_pb2_grpc, storage_pb2
from router import page_tokens
from router.fanout import FanOut
from router.node_pool import NodePool
from router.post_ids import PostIdGenerator, created_at_ms
from router.validation import check_text, check_user, page_size

__all__ = ["FeedServicer", "TIMELINE", "USER_POSTS", "FOLLOWERS", "FOLLOWING"]

log = logging.getLogger(__name__)

# Listing kinds, bound into page tokens so one listing's token cannot page another.
TIMELINE, USER_POSTS, FOLLOWERS, FOLLOWING = 1, 2, 3, 4


class FeedServicer(feed_pb2_grpc.FeedServicer):
    def __init__(self, config: ClusterConfig, pool: NodePool, fanout: FanOut, ids: PostIdGenerator) -> None:
        self.config = config
        self.limits = config.limits
        self.pool = pool
        self.fanout = fanout
        self.ids = ids

    # -- follow graph ----------------------------------------------------------------------------

    @grpc_errors
    async def Follow(
        self, request: feed_pb2.FollowRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.FollowResponse:
        follower = check_user(request.follower, "follower")
        followee = check_user(request.followee, "followee")
        if follower == followee:
            raise InvalidArgument(f"{follower} cannot follow themselves")
        await self.pool.call(
            follower, "AddFollowing", storage_pb2.AddFollowingRequest(follower=follower, followee=followee)
        )
        added = await self.pool.call(
            followee,
            "AddFollower",
            storage_pb2.AddFollowerRequest(
                followee_key=followee,
                follower=follower,
                author=followee,
                backfill_limit=self.limits.backfill_posts,
            ),
        )
        if added.recent_posts:
            await self.pool.call(
                follower,
                "InsertInbox",
                storage_pb2.InsertInboxRequest(posts=added.recent_posts, consumers=[follower]),
            )
        return feed_pb2.FollowResponse(created=added.created)

    @grpc_errors
    async def Unfollow(
        self, request: feed_pb2.UnfollowRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.UnfollowResponse:
        follower = check_user(request.follower, "follower")
        followee = check_user(request.followee, "followee")
        if follower == followee:
            raise InvalidArgument(f"{follower} cannot unfollow themselves")
        follower_edge = await self.pool.call(
            followee, "RemoveFollower", storage_pb2.RemoveFollowerRequest(followee_key=followee, follower=follower)
        )
        following_edge = await self.pool.call(
            follower, "RemoveFollowing", storage_pb2.RemoveFollowingRequest(follower=follower, followee=followee)
        )
        return feed_pb2.UnfollowResponse(removed=follower_edge.changed or following_edge.changed)

    # -- posts -----------------------------------------------------------------------------------

    @grpc_errors
    async def Post(self, request: feed_pb2.PostRequest, context: grpc.aio.ServicerContext) -> feed_pb2.Post:
        author = check_user(request.author, "author")
        text = check_text(request.text, self.limits)
        post_id = self.ids.next_id()
        post = feed_pb2.Post(id=post_id, author=author, text=text, created_at_ms=created_at_ms(post_id))
        stored = await self.pool.call(author, "StorePost", storage_pb2.StorePostRequest(author_key=author, post=post))
        # Acknowledged once stored under the author; delivery to followers runs on after the reply.
        self.fanout.deliver(post, stored.followers)
        return post

    @grpc_errors
    async def DeletePost(
        self, request: feed_pb2.DeletePostRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.DeletePostResponse:
        author = check_user(request.author, "author")
        if request.post_id == 0:
            raise InvalidArgument("post_id is required")
        removed = await self.pool.call(
            author, "RemovePost", storage_pb2.RemovePostRequest(author_key=author, post_id=request.post_id)
        )
        self.fanout.retract(request.post_id, removed.followers)
        return feed_pb2.DeletePostResponse()

    # -- reads -----------------------------------------------------------------------------------

    @grpc_errors
    async def GetTimeline(
        self, request: feed_pb2.GetTimelineRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.PostPage:
        user = check_user(request.user)
        size = page_size(request.page_size, self.limits)
        before = page_tokens.decode_post_cursor(TIMELINE, user, request.page_token)
        read = await self.pool.call(
            user, "ReadInbox", storage_pb2.ReadInboxRequest(consumer=user, limit=size + 1, before_id=before)
        )
        return self._post_page(TIMELINE, user, list(read.posts), size)

    @grpc_errors
    async def GetUserPosts(
        self, request: feed_pb2.GetUserPostsRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.PostPage:
        author = check_user(request.author, "author")
        size = page_size(request.page_size, self.limits)
        before = page_tokens.decode_post_cursor(USER_POSTS, author, request.page_token)
        read = await self.pool.call(
            author, "ReadPosts", storage_pb2.ReadPostsRequest(author_key=author, limit=size + 1, before_id=before)
        )
        return self._post_page(USER_POSTS, author, list(read.posts), size)

    @staticmethod
    def _post_page(listing: int, user: str, posts: list[feed_pb2.Post], size: int) -> feed_pb2.PostPage:
        """`posts` was read with one extra entry: its presence says whether a next page exists."""
        page = feed_pb2.PostPage(posts=posts[:size])
        if len(posts) > size:
            page.next_page_token = page_tokens.encode_post_cursor(listing, user, posts[size - 1].id)
        return page

    @grpc_errors
    async def ListFollowers(
        self, request: feed_pb2.ListFollowersRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.UserPage:
        return await self._list_edges(FOLLOWERS, storage_pb2.FOLLOWERS, request)

    @grpc_errors
    async def ListFollowing(
        self, request: feed_pb2.ListFollowingRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.UserPage:
        return await self._list_edges(FOLLOWING, storage_pb2.FOLLOWING, request)

    async def _list_edges(
        self,
        listing: int,
        direction: storage_pb2.EdgeDirection,
        request: feed_pb2.ListFollowersRequest | feed_pb2.ListFollowingRequest,
    ) -> feed_pb2.UserPage:
        user = check_user(request.user)
        size = page_size(request.page_size, self.limits)
        after = page_tokens.decode_user_cursor(listing, user, request.page_token)
        read = await self.pool.call(
            user,
            "ListEdges",
            storage_pb2.ListEdgesRequest(direction=direction, user_key=user, after=after, limit=size + 1),
        )
        users = list(read.users)
        page = feed_pb2.UserPage(users=users[:size])
        if len(users) > size:
            page.next_page_token = page_tokens.encode_user_cursor(listing, user, users[size - 1])
        return page

    @grpc_errors
    async def GetUser(self, request: feed_pb2.GetUserRequest, context: grpc.aio.ServicerContext) -> feed_pb2.User:
        user = check_user(request.user)
        meta = await self.pool.call(user, "GetUserMeta", storage_pb2.GetUserMetaRequest(user_key=user))
        if not meta.found:
            raise NotFound(f"user {user} not found: they have never posted, followed or been followed")
        return feed_pb2.User(
            user=user,
            follower_count=meta.follower_count,
            following_count=meta.following_count,
            post_count=meta.post_count,
            hot=False,
        )
