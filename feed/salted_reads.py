"""Reads that span all of a user's keys: the home key plus, once the user has been hot, its S
salted keys (``user#0 .. user#S-1``) spread over several nodes.

Keys are grouped by owning node so each node gets one request carrying all of its keys (the node
merges those), and the router merges the per-node answers: a salted read costs one RPC per node,
in parallel, never one per salt.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator

from common import post_bytes, salting
from common.hot_state import HotState
from common.storage_client import StorageClient
from protos import feed_pb2, storage_pb2

__all__ = ["SaltedReads", "newest_of"]


def newest_of(replies: list[storage_pb2.ReadPostsResponse], limit: int) -> list[bytes]:
    """The newest `limit` posts of the nodes' replies, each newest first."""
    if len(replies) == 1:
        return list(replies[0].posts)
    merged = heapq.merge(*(list(r.posts) for r in replies), key=lambda raw: -post_bytes.post_id(raw))
    return list(merged)[:limit]


class SaltedReads:
    def __init__(self, storage: StorageClient, buckets: int) -> None:
        self.storage = storage
        self.buckets = buckets

    async def posts(self, author: str, state: HotState, limit: int, before_id: int = 0) -> list[feed_pb2.Post]:
        """The author's newest `limit` posts below `before_id`, over every key it may have used."""
        return post_bytes.decode(await self.raw_posts(author, state, limit, before_id))

    async def raw_posts(self, author: str, state: HotState, limit: int, before_id: int = 0) -> list[bytes]:
        """As `posts`, encoded as the nodes stored them."""
        return await self.newest_over(salting.keys_of(author, state, self.buckets), limit, before_id)

    async def newest_over(self, author_keys: list[str], limit: int, before_id: int = 0) -> list[bytes]:
        """The newest `limit` posts below `before_id` over any author keys (one author's, or every
        author a returning reader follows: feed/reader_activity.py), encoded."""
        return newest_of(await self.post_replies(author_keys, limit, before_id), limit)

    async def post_replies(
        self, author_keys: list[str], limit: int, before_id: int = 0
    ) -> list[storage_pb2.ReadPostsResponse]:
        """The nodes' replies to the read of `author_keys`, one per node (newest_of merges them).
        A node answers a first page from memory, as the same reply object each time it is unchanged
        (node/timeline_cache.py): the timeline's merged pages rely on that (feed/merged_pages.py)."""
        groups = list(self.storage.group_by_node(author_keys).values())
        reads = [
            self.storage.read_posts.by_key(
                group[0],
                storage_pb2.ReadPostsRequest(
                    author_key=group[0], more_keys=group[1:], limit=limit, before_id=before_id
                ),
            )
            for group in groups
        ]
        if len(reads) == 1:  # the common case on a node holding every key: no task to schedule
            return [await reads[0]]
        return list(await asyncio.gather(*reads))

    async def followers(
        self, user: str, state: HotState, after: str, limit: int, salted_only: bool = False
    ) -> list[str]:
        """Followers in byte order after `after`, over every key (or only the salted ones), without repeats."""
        keys = salting.salted_keys(user, self.buckets) if salted_only else salting.keys_of(user, state, self.buckets)
        groups = self.storage.group_by_node(keys)
        replies = await asyncio.gather(
            *(
                self.storage.list_edges.by_key(
                    group[0],
                    storage_pb2.ListEdgesRequest(
                        direction=storage_pb2.FOLLOWERS,
                        user_key=group[0],
                        more_keys=group[1:],
                        after=after,
                        limit=limit,
                    ),
                )
                for group in groups.values()
            )
        )
        return salting.merge_users((r.users for r in replies), limit)

    async def follower_pages(
        self, user: str, state: HotState, page: int = 5000, salted_only: bool = False
    ) -> AsyncIterator[list[str]]:
        """Every follower, a page at a time (a celebrity's millions never sit in memory at once)."""
        after = ""
        while True:
            names = await self.followers(user, state, after, page, salted_only)
            if names:
                yield names
            if len(names) < page:
                return
            after = names[-1]

    async def salted_post_count(self, user: str) -> int:
        groups = self.storage.group_by_node(salting.salted_keys(user, self.buckets))
        replies = await asyncio.gather(
            *(
                self.storage.get_user_meta.by_key(
                    group[0], storage_pb2.GetUserMetaRequest(user_key=group[0], post_keys=group[1:])
                )
                for group in groups.values()
            )
        )
        return sum(r.post_count for r in replies)
