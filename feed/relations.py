"""Mute and block across the nodes of the two users (node/relations.py has the node side).

A mute is one edge under the muter: its node filters the muter's timeline reads with it. A block
writes two edges, one under each user (the blocker's "blocks", the blocked user's "blocked by"), so
each user's node can filter that user's timeline and refuse a follow across the block on its own;
only once both are written does it remove the follow edges both ways (Follows.unfollow). A follow
racing the block is refused by whichever mark it meets, and an edge it wrote before a mark is
removed by that unfollow, which comes after both marks. Everything is idempotent: a client retries
a block that failed midway and it completes.
"""

from __future__ import annotations

import asyncio

from common.storage_client import StorageClient
from feed.follows import Follows
from protos import storage_pb2

__all__ = ["Relations"]


class Relations:
    def __init__(self, storage: StorageClient, follows: Follows) -> None:
        self.storage = storage
        self.follows = follows

    async def mute(self, user: str, target: str, on: bool) -> bool:
        return await self._set(user, storage_pb2.MUTES, target, on)

    async def block(self, user: str, target: str) -> bool:
        changed = await asyncio.gather(
            self._set(user, storage_pb2.BLOCKS, target, True),
            self._set(target, storage_pb2.BLOCKED_BY, user, True),
        )
        await asyncio.gather(self.follows.unfollow(user, target), self.follows.unfollow(target, user))
        return changed[0]

    async def unblock(self, user: str, target: str) -> bool:
        # The blocked user's mark first: a retry after a failure midway finds the blocker's still on.
        await self._set(target, storage_pb2.BLOCKED_BY, user, False)
        return await self._set(user, storage_pb2.BLOCKS, target, False)

    async def listed(self, user: str, direction: storage_pb2.EdgeDirection, after: str, limit: int) -> list[str]:
        """Whom `user` mutes (MUTED) or has blocked (BLOCKED), in byte order after `after`."""
        read = await self.storage.list_edges.by_key(
            user, storage_pb2.ListEdgesRequest(direction=direction, user_key=user, after=after, limit=limit)
        )
        return list(read.users)

    async def _set(self, user: str, relation: storage_pb2.Relation, target: str, on: bool) -> bool:
        reply = await self.storage.set_relation.by_key(
            user, storage_pb2.SetRelationRequest(user=user, target=target, relation=relation, on=on)
        )
        return bool(reply.changed)
