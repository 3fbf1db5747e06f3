"""Posting and deleting: where a post is stored. Decided here, once; delivery is the nodes' job.

A normal author's post is stored under its home key. The author's node writes it together with the
record of the delivery it owes, in one atomic write, and then delivers it to every follower's inbox
itself (node/delivery.py), so nothing a router does — or fails to do, dying a moment after the
acknowledgement — can lose a delivery. A hot author's post is stored under ``author#salt(post id)``,
so a burst of a celebrity's posts lands on S partitions, not one, and is not fanned out: followers
merge it at read time, and this router's hot-post cache shows it at once. (If the author cooled
down before this router noticed, the salted key's node finds out and delivers the post after all.)
A delete is the same: the node holding the post removes it and, durably, every inbox copy.

A Post carrying the client's request_id is stored once however often it is retried: the author's
partition (a hot author's: the salted key its request id picks) remembers which post id the request
was stored as (node/posts.py), and a retry through any router or node gets that post back, made
durable on a quorum again. An attempt that reached only a node that died is replaced, on every
replica, by the retry's post (the later attempt wins). An author turning hot or cooling between two
attempts still sends them to two keys (the home and a salted one): that post may show twice.
"""

from __future__ import annotations

from common import salting
from common.config import ClusterConfig
from common.errors import NotFound
from common.hot_state import HotState
from common.storage_client import StorageClient
from feed.hot_cache import HotPostCache
from feed.hot_users import HotUsers
from feed.post_ids import PostIds, created_at_ms
from protos import feed_pb2, storage_pb2

__all__ = ["Posts"]

_MAX_ID_TRIES_PER_BUCKET = 64


class Posts:
    def __init__(
        self,
        config: ClusterConfig,
        storage: StorageClient,
        hot: HotUsers,
        cache: HotPostCache,
        ids: PostIds,
    ) -> None:
        self.storage = storage
        self.hot = hot
        self.cache = cache
        self.ids = ids
        self.buckets = config.hot.salt_buckets

    async def post(self, author: str, text: str, request_id: str = "") -> feed_pb2.Post:
        hot = self.hot.state(author) is HotState.HOT
        post_id = self._id_for(request_id) if hot and request_id else self.ids.next_id()
        post = feed_pb2.Post(id=post_id, author=author, text=text, created_at_ms=created_at_ms(post_id))
        if hot:
            key = salting.post_key(author, post_id, self.buckets)
            state = HotState.HOT
        else:
            key = author
        stored = await self.storage.store_post.by_key(
            key, storage_pb2.StorePostRequest(author_key=key, post=post, request_id=request_id)
        )
        if stored.existing_id:  # a retry: the first attempt stored it
            first = stored.existing_id
            return feed_pb2.Post(id=first, author=author, text=text, created_at_ms=created_at_ms(first))
        if key == author:
            state = HotState(stored.state)
            self.hot.learn(author, state)
        if not state.fans_out:
            self.cache.add_post(post)
        return post

    def _id_for(self, request_id: str) -> int:
        """A new id whose salt is the request's: a retry, which gets a new id, is stored under the key
        of the first attempt and found there by its request id (a salt from the id alone put 7 in 8
        retries of a hot author's post on another key, stored twice). Ids are skipped until one fits
        (S tries on average; the generator has 4,096 a millisecond)."""
        wanted = salting.request_salt(request_id, self.buckets)
        for _ in range(_MAX_ID_TRIES_PER_BUCKET * self.buckets):
            post_id = self.ids.next_id()
            if salting.post_salt(post_id, self.buckets) == wanted:
                return post_id
        return post_id  # never in practice (a 1 in e^64 run): stored as if the request had no id

    async def delete(self, author: str, post_id: int) -> None:
        keys = [salting.post_key(author, post_id, self.buckets), author] if self.hot.state(author).salted else [author]
        for key in keys:
            request = storage_pb2.RemovePostRequest(author_key=key, post_id=post_id)
            removed = await self.storage.remove_post.by_key(key, request)
            if removed.HasField("post"):
                self.cache.remove_post(author, post_id)
                return
        raise NotFound(f"{author} has no post {post_id}")
