"""Posting and deleting: where a post is stored, and whether it fans out. Decided here, once.

A normal author's post is stored under its home key; the author's node returns, in the same step,
its followers and the author's current hot state, and unless that state is HOT the post goes to
router/fanout.py, which delivers it and never calls back. A hot author's post is stored under
``author#salt(post id)`` — so a burst of a celebrity's posts lands on S partitions, not one — and
is not fanned out at all: followers merge it at read time, and this router's hot-post cache shows
it at once.
"""

from __future__ import annotations

from common import salting
from common.config import ClusterConfig
from common.errors import NotFound
from common.hot_state import HotState
from common.storage_client import StorageClient
from protos import feed_pb2, storage_pb2
from router.fanout import FanOut
from router.hot_cache import HotPostCache
from router.hot_users import HotUsers
from router.post_ids import PostIdGenerator, created_at_ms

__all__ = ["Posts"]


class Posts:
    def __init__(
        self,
        config: ClusterConfig,
        storage: StorageClient,
        fanout: FanOut,
        hot: HotUsers,
        cache: HotPostCache,
        ids: PostIdGenerator,
    ) -> None:
        self.storage = storage
        self.fanout = fanout
        self.hot = hot
        self.cache = cache
        self.ids = ids
        self.buckets = config.hot.salt_buckets

    async def post(self, author: str, text: str) -> feed_pb2.Post:
        post_id = self.ids.next_id()
        post = feed_pb2.Post(id=post_id, author=author, text=text, created_at_ms=created_at_ms(post_id))
        followers: list[str] = []
        if self.hot.state(author) is HotState.HOT:
            key = salting.post_key(author, post_id, self.buckets)
            request = storage_pb2.StorePostRequest(author_key=key, post=post, skip_followers=True)
            await self.storage.store_post.by_key(key, request)
            state = HotState.HOT
        else:
            stored = await self.storage.store_post.by_key(
                author, storage_pb2.StorePostRequest(author_key=author, post=post)
            )
            state = HotState(stored.state)
            self.hot.learn(author, state)
            followers = list(stored.followers)
        # Acknowledged once stored; delivery runs on after the reply.
        if state.fans_out:
            await self.fanout.deliver(post, state, followers)
        else:
            self.cache.add_post(post)
        return post

    async def delete(self, author: str, post_id: int) -> None:
        state = self.hot.state(author)
        salted = salting.post_key(author, post_id, self.buckets)
        for key in [salted, author] if state.salted else [author]:
            try:
                removed = await self.storage.remove_post.by_key(
                    key, storage_pb2.RemovePostRequest(author_key=key, post_id=post_id)
                )
            except NotFound:
                continue
            self.cache.remove_post(author, post_id)
            if key == salted and state.is_hot:
                return  # stored while hot: never copied into an inbox
            await self.fanout.retract(author, post_id, state, removed.followers)
            return
        raise NotFound(f"{author} has no post {post_id}")
