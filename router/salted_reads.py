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

from common.hot_state import HotState, salted_keys
from protos import feed_pb2, storage_pb2
from router.node_pool import NodePool

__all__ = ["SaltedReads"]


class SaltedReads:
    def __init__(self, pool: NodePool, buckets: int) -> None:
        self.pool = pool
        self.buckets = buckets

    def keys_of(self, user: str, state: HotState) -> list[str]:
        return [user, *salted_keys(user, self.buckets)] if state.salted else [user]

    async def posts(self, author: str, state: HotState, limit: int, before_id: int = 0) -> list[feed_pb2.Post]:
        """The author's newest `limit` posts below `before_id`, over every key it may have used."""
        groups = self.pool.group_by_node(self.keys_of(author, state))
        replies = await asyncio.gather(
            *(
                self.pool.call(
                    group[0],
                    "ReadPosts",
                    storage_pb2.ReadPostsRequest(
                        author_key=group[0], more_keys=group[1:], limit=limit, before_id=before_id
                    ),
                )
                for group in groups.values()
            )
        )
        if len(replies) == 1:
            return list(replies[0].posts)
        merged = heapq.merge(*(r.posts for r in replies), key=lambda p: -p.id)
        return list(merged)[:limit]

    async def followers(self, user: str, state: HotState, after: str, limit: int) -> list[str]:
        """Followers in byte order after `after`, over every key, without repeats."""
        groups = self.pool.group_by_node(self.keys_of(user, state))
        replies = await asyncio.gather(
            *(
                self.pool.call(
                    group[0],
                    "ListEdges",
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
        out: list[str] = []
        for name in heapq.merge(*(r.users for r in replies)):
            if not out or out[-1] != name:
                out.append(name)
                if len(out) >= limit:
                    break
        return out

    async def follower_pages(self, user: str, state: HotState, page: int = 5000) -> AsyncIterator[list[str]]:
        """Every follower, a page at a time (a celebrity's millions never sit in memory at once)."""
        after = ""
        while True:
            names = await self.followers(user, state, after, page)
            if names:
                yield names
            if len(names) < page:
                return
            after = names[-1]

    async def salted_post_count(self, user: str) -> int:
        groups = self.pool.group_by_node(salted_keys(user, self.buckets))
        replies = await asyncio.gather(
            *(
                self.pool.call(
                    group[0], "GetUserMeta", storage_pb2.GetUserMetaRequest(user_key=group[0], post_keys=group[1:])
                )
                for group in groups.values()
            )
        )
        return sum(r.post_count for r in replies)
