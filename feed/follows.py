"""Follow and unfollow across the follower's node and the followee's node(s).

The order of steps is what keeps them safe against concurrent posts (node/feed_store.py has the
node side):
- Follow writes the follower-side edge first, so the follower's inbox accepts the followee's posts
  (and, for a hot followee, marks it merged-at-read); then the followee-side edge, which for a
  normal followee also reads its newest posts in the same step, on every replica of its quorum
  (node/writes.py merges them: the coordinator alone may not have a post acknowledged a moment
  before); then backfills those. A concurrent post is either in that read or sees the new follower
  when it fans out.
- Unfollow removes the followee-side edge first, so no new fan-out reaches the follower, then the
  follower-side edge together with the followee's posts in the inbox.
A salted (once hot) followee's edges live on ``followee#salt(follower)``. The follower-side edge
keeps the key its other side went to, so following again or retrying after a failure midway never
writes a second edge elsewhere. Each key counts its own edges exactly; a salted key's node reports
its count to the followee's home (durably), where the total decides hot/cold transitions.
"""

from __future__ import annotations

import asyncio

from common import salting
from common.config import ClusterConfig
from common.errors import FailedPrecondition
from common.hot_state import HotState
from common.storage_client import StorageClient
from feed.hot_users import HotUsers
from feed.salted_reads import SaltedReads
from protos import feed_pb2, storage_pb2

__all__ = ["Follows"]


class Follows:
    def __init__(self, config: ClusterConfig, storage: StorageClient, hot: HotUsers, reads: SaltedReads) -> None:
        self.storage = storage
        self.hot = hot
        self.reads = reads
        self.buckets = config.hot.salt_buckets
        self.backfill = config.limits.backfill_posts

    async def follow(self, follower: str, followee: str) -> bool:
        believed = self.hot.state(followee)
        intended = salting.follower_key(followee, follower, self.buckets) if believed.salted else followee
        kept = await self._add_following(follower, followee, believed.merged_at_read, intended)
        # The key kept with an existing edge wins: following again, or retrying a follow that failed
        # midway, writes the followee side where it was (or should have been) written the first time.
        key = kept or intended
        recent: list[feed_pb2.Post]
        if key == followee:
            added = await self.storage.add_follower.by_key(
                followee,
                storage_pb2.AddFollowerRequest(
                    followee_key=followee, follower=follower, author=followee, backfill_limit=self.backfill
                ),
            )
            if added.refused:
                # A block landed between our two edges: take ours back (its unfollow may have already).
                await self.storage.remove_following.by_key(
                    follower, storage_pb2.RemoveFollowingRequest(follower=follower, followee=followee)
                )
                raise _blocked(follower, followee, added.refused)
            state = HotState(added.state)
            recent = list(added.recent_posts)
        else:
            # Counted under the salted key, whose node reports the count to the followee's home.
            added = await self.storage.add_follower.by_key(
                key, storage_pb2.AddFollowerRequest(followee_key=key, follower=follower, author=key)
            )
            state = believed
            recent = [] if state.merged_at_read else await self.reads.posts(followee, state, self.backfill)
        self.hot.learn(followee, state)
        if state.merged_at_read and not believed.merged_at_read:
            # The followee turned hot under us: its next posts will not be fanned out to us.
            await self._add_following(follower, followee, True, key)
        if recent:
            await self.storage.insert_inbox.by_key(
                follower, storage_pb2.InsertInboxRequest(posts=recent, consumers=[follower])
            )
        return bool(added.created)

    async def unfollow(self, follower: str, followee: str) -> bool:
        state = self.hot.state(followee)
        # The followee side first, where this router expects it: no new delivery reaches the follower.
        expected = [followee, salting.follower_key(followee, follower, self.buckets)] if state.salted else [followee]
        removed = await asyncio.gather(*(self._remove_follower(k, follower) for k in expected))
        self.hot.learn(followee, HotState(removed[0].state))
        following = await self.storage.remove_following.by_key(
            follower, storage_pb2.RemoveFollowingRequest(follower=follower, followee=followee)
        )
        elsewhere = following.followee_key not in ("", *expected)  # made under a state this router missed
        if elsewhere:
            await self._remove_follower(following.followee_key, follower)
        return bool(any(r.changed for r in removed) or following.changed or elsewhere)

    async def _remove_follower(self, key: str, follower: str) -> storage_pb2.EdgeResponse:
        return await self.storage.remove_follower.by_key(
            key, storage_pb2.RemoveFollowerRequest(followee_key=key, follower=follower)
        )

    async def _add_following(self, follower: str, followee: str, hot: bool, followee_key: str) -> str:
        """Writes the follower-side edge; returns the followee key kept with it if it existed.
        FAILED_PRECONDITION if a block between the two refuses it."""
        reply = await self.storage.add_following.by_key(
            follower,
            storage_pb2.AddFollowingRequest(follower=follower, followee=followee, hot=hot, followee_key=followee_key),
        )
        if reply.refused:
            raise _blocked(follower, followee, reply.refused)
        return "" if reply.changed else reply.followee_key


def _blocked(follower: str, followee: str, refused: storage_pb2.Relation) -> FailedPrecondition:
    """The refusal, worded for the caller (the follower)."""
    if refused == storage_pb2.BLOCKS:
        return FailedPrecondition(f"you have blocked {followee}: unblock them before following ({follower})")
    return FailedPrecondition(f"{followee} has blocked you ({follower})")
