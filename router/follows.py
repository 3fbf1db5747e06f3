"""Follow and unfollow across the follower's node and the followee's node(s).

The order of steps is what keeps them safe against concurrent posts (node/feed_store.py has the
node side):
- Follow writes the follower-side edge first, so the follower's inbox accepts the followee's posts
  (and, for a hot followee, marks it merged-at-read); then the followee-side edge, which for a
  normal followee also reads its newest posts in the same step; then backfills those. A concurrent
  post is either in that read or sees the new follower when it fans out.
- Unfollow removes the followee-side edge first, so no new fan-out reaches the follower, then the
  follower-side edge together with the followee's posts in the inbox.
A salted (once hot) followee's edges live on ``followee#salt(follower)``; its total follower count
stays on the home key, where the node decides hot/cold transitions.
"""

from __future__ import annotations

import asyncio

from common import salting
from common.config import ClusterConfig
from common.hot_state import HotState
from common.storage_client import StorageClient
from protos import feed_pb2, storage_pb2
from router.hot_users import HotUsers
from router.salted_reads import SaltedReads

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
        new_following = await self._add_following(follower, followee, believed.merged_at_read)
        recent: list[feed_pb2.Post]
        if believed.salted:
            key = salting.follower_key(followee, follower, self.buckets)
            added = await self.storage.add_follower.by_key(
                key, storage_pb2.AddFollowerRequest(followee_key=key, follower=follower, author=key)
            )
            # Count only a follow that is new on both sides: an edge made before the followee was
            # salted sits on the home key, and following again must not count it twice. (A retry
            # after a failure between the two writes leaves the count one short; the edge is right.)
            created = added.created and new_following
            state = await self._adjust(followee, +1) if created else believed
            recent = [] if state.merged_at_read else await self.reads.posts(followee, state, self.backfill)
        else:
            added = await self.storage.add_follower.by_key(
                followee,
                storage_pb2.AddFollowerRequest(
                    followee_key=followee, follower=follower, author=followee, backfill_limit=self.backfill
                ),
            )
            state = HotState(added.state)
            recent = list(added.recent_posts)
            created = added.created
        self.hot.learn(followee, state)
        if state.merged_at_read and not believed.merged_at_read:
            # The followee turned hot under us: its next posts will not be fanned out to us.
            await self._add_following(follower, followee, True)
        if recent:
            await self.storage.insert_inbox.by_key(
                follower, storage_pb2.InsertInboxRequest(posts=recent, consumers=[follower])
            )
        return bool(created)

    async def unfollow(self, follower: str, followee: str) -> bool:
        state = self.hot.state(followee)
        home = self.storage.remove_follower.by_key(
            followee, storage_pb2.RemoveFollowerRequest(followee_key=followee, follower=follower)
        )
        if state.salted:
            # The edge is on the salt if made while salted, at home if made before: try both.
            key = salting.follower_key(followee, follower, self.buckets)
            home_edge, salt_edge = await asyncio.gather(
                home,
                self.storage.remove_follower.by_key(
                    key, storage_pb2.RemoveFollowerRequest(followee_key=key, follower=follower)
                ),
            )
            removed = home_edge.changed or salt_edge.changed
            # The home node already uncounted a home edge; a follow repeated after salting may have
            # left a second, uncounted edge on the salt: uncount one edge, not two.
            if salt_edge.changed and not home_edge.changed:
                new_state = await self._adjust(followee, -1)
            else:
                new_state = HotState(home_edge.state)
        else:
            home_edge = await home
            removed, new_state = home_edge.changed, HotState(home_edge.state)
        self.hot.learn(followee, new_state)
        following = await self.storage.remove_following.by_key(
            follower, storage_pb2.RemoveFollowingRequest(follower=follower, followee=followee)
        )
        return bool(removed or following.changed)

    async def _add_following(self, follower: str, followee: str, hot: bool) -> bool:
        reply = await self.storage.add_following.by_key(
            follower, storage_pb2.AddFollowingRequest(follower=follower, followee=followee, hot=hot)
        )
        return bool(reply.changed)

    async def _adjust(self, user: str, delta: int) -> HotState:
        reply = await self.storage.adjust_followers.by_key(
            user, storage_pb2.AdjustFollowersRequest(user=user, delta=delta)
        )
        return HotState(reply.state)
