"""Posting and deleting: where a post is stored, and who gets a copy.

A normal author's post is stored under its home key and fanned out to every follower's inbox. A
hot author's post is stored under ``author#salt(post id)`` — so a burst of a celebrity's posts lands
on S partitions, not one — and is not fanned out at all: followers merge it at read time, and this
router's hot-post cache shows it at once. The node that stores a home-key post also returns the
author's current state, so a router whose view is a moment old still never fans out a hot post.
"""

from __future__ import annotations

from common.config import ClusterConfig
from common.errors import NotFound
from common.hot_state import HotState, salt_of, salted_key
from protos import feed_pb2, storage_pb2
from router.fanout import FanOut
from router.hot_cache import HotPostCache
from router.hot_users import HotUsers
from router.node_pool import NodePool
from router.post_ids import PostIdGenerator, created_at_ms
from router.salted_reads import SaltedReads

__all__ = ["Posts"]


class Posts:
    def __init__(
        self,
        config: ClusterConfig,
        pool: NodePool,
        fanout: FanOut,
        hot: HotUsers,
        reads: SaltedReads,
        cache: HotPostCache,
        ids: PostIdGenerator,
    ) -> None:
        self.pool = pool
        self.fanout = fanout
        self.hot = hot
        self.reads = reads
        self.cache = cache
        self.ids = ids
        self.buckets = config.hot.salt_buckets

    def _salt_key(self, author: str, post_id: int) -> str:
        return salted_key(author, salt_of(str(post_id), self.buckets))

    async def post(self, author: str, text: str) -> feed_pb2.Post:
        post_id = self.ids.next_id()
        post = feed_pb2.Post(id=post_id, author=author, text=text, created_at_ms=created_at_ms(post_id))
        if self.hot.state(author) is HotState.HOT:
            key = self._salt_key(author, post_id)
            await self.pool.call(
                key, "StorePost", storage_pb2.StorePostRequest(author_key=key, post=post, skip_followers=True)
            )
            self.cache.add_post(post)
            return post
        stored = await self.pool.call(author, "StorePost", storage_pb2.StorePostRequest(author_key=author, post=post))
        state = HotState(stored.state)
        self.hot.learn(author, state)
        if state is HotState.HOT:
            self.cache.add_post(post)
            return post
        # Acknowledged once stored under the author; delivery runs on after the reply.
        self.fanout.deliver(post, stored.followers)
        if state.salted:  # followers who came while it was hot have salted edges
            self.fanout.run(self._deliver_to_salted(post, state, set(stored.followers)))
        await self.fanout.admit()
        return post

    async def _deliver_to_salted(self, post: feed_pb2.Post, state: HotState, done: set[str]) -> None:
        async for page in self.reads.follower_pages(post.author, state):
            self.fanout.deliver(post, [f for f in page if f not in done])

    async def delete(self, author: str, post_id: int) -> None:
        state = self.hot.state(author)
        keys = [self._salt_key(author, post_id), author] if state.salted else [author]
        for key in keys:
            try:
                removed = await self.pool.call(
                    key, "RemovePost", storage_pb2.RemovePostRequest(author_key=key, post_id=post_id)
                )
            except NotFound:
                continue
            self.cache.remove_post(author, post_id)
            if key != author and state in (HotState.MIGRATING, HotState.HOT):
                return  # stored while hot: never copied into an inbox
            self.fanout.retract(post_id, removed.followers)
            if state.salted:
                self.fanout.run(self._retract_from_salted(author, post_id, state))
            return
        raise NotFound(f"{author} has no post {post_id}")

    async def _retract_from_salted(self, author: str, post_id: int, state: HotState) -> None:
        async for page in self.reads.follower_pages(author, state):
            self.fanout.retract(post_id, page)
