"""Bulk follow loading (graph imports, benchmarks): the follow flow, batched per node.

One call of up to 100,000 edges becomes AddFollowingMany calls per follower node and
AddFollowerMany calls per followee node (of at most CHUNK edges each, so no node spends long on one
and every call stays well inside its deadline), all concurrent, instead of three RPCs per edge. It keeps the
meaning of Follow (salted edges for salted followees, merged-at-read marks for hot ones, counts on
the home key, transitions evaluated by the nodes) but copies no existing posts: it is meant for
loading a graph before the posts.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable

from common import salting
from common.config import ClusterConfig
from common.errors import InvalidArgument
from common.hot_state import HotState
from common.storage_client import StorageClient, UnaryRpc
from feed.hot_users import HotUsers
from feed.validation import check_user
from protos import storage_pb2

__all__ = ["BulkLoader", "MAX_EDGES"]

MAX_EDGES = 100_000
# Edges per node call: ~50 ms of a node's event loop. At RF=3 a node applies its own calls and
# its peers' forwarded ones; 10,000 (0.1-0.3 s each) delayed its health checks past their deadline.
CHUNK = 2_500


async def _per_node(
    rpc: UnaryRpc[storage_pb2.EdgeBatch, storage_pb2.EdgeBatchResponse], by_node: dict[str, list[storage_pb2.Edge]]
) -> list[storage_pb2.EdgeBatchResponse]:
    """Every node's edges in chunks, nodes at once, each node's chunks one after another (so a
    key's last answer is its latest state)."""

    async def one(node_id: str, edges: list[storage_pb2.Edge]) -> list[storage_pb2.EdgeBatchResponse]:
        return [
            await rpc.on_node(node_id, storage_pb2.EdgeBatch(edges=edges[i : i + CHUNK]))
            for i in range(0, len(edges), CHUNK)
        ]

    answers = await asyncio.gather(*(one(n, edges) for n, edges in by_node.items()))
    return [reply for replies in answers for reply in replies]


class BulkLoader:
    def __init__(self, config: ClusterConfig, storage: StorageClient, hot: HotUsers) -> None:
        self.storage = storage
        self.hot = hot
        self.buckets = config.hot.salt_buckets

    async def follow_many(self, edges: list[tuple[str, str]]) -> int:
        if len(edges) > MAX_EDGES:
            raise InvalidArgument(f"at most {MAX_EDGES} edges per call (got {len(edges)}); split the load")
        for i, (follower, followee) in enumerate(edges):
            check_user(follower, f"edges[{i}].follower")
            check_user(followee, f"edges[{i}].followee")
            if follower == followee:
                raise InvalidArgument(f"edges[{i}]: {follower} cannot follow themselves")
        believed = {followee: self.hot.state(followee) for _, followee in edges}
        # As in Follow: where each followee-side edge goes, unless an existing edge kept a key.
        key_of = {(f, e): salting.follower_key(e, f, self.buckets) if believed[e].salted else e for f, e in edges}
        new_following, kept = await self._add_following(edges, key_of, lambda e: believed[e].merged_at_read)
        key_of.update(kept)

        by_node: dict[str, list[storage_pb2.Edge]] = defaultdict(list)
        for follower, followee in edges:
            key = key_of[(follower, followee)]
            by_node[self.storage.node_for(key)].append(storage_pb2.Edge(follower=follower, followee=key))
        replies = await _per_node(self.storage.add_follower_many, by_node)
        # Home keys answer with their user's state; salted keys report their counts to the home
        # themselves (durably), and this router learns the outcome from its next poll.
        states = {
            entry.user: HotState(entry.state)
            for reply in replies
            for entry in reply.states
            if not salting.home_of(entry.user)[1]
        }
        for user, state in states.items():
            self.hot.learn(user, state)

        # Followees that turned hot during this load: mark them merged-at-read for these followers.
        turned = {u for u, s in states.items() if s.merged_at_read and not believed[u].merged_at_read}
        if turned:
            await self._add_following([e for e in edges if e[1] in turned], key_of, lambda _followee: True)
        return sum(new_following.values())

    async def _add_following(
        self, edges: list[tuple[str, str]], key_of: dict[tuple[str, str], str], hot: Callable[[str], bool]
    ) -> tuple[Counter[str], dict[tuple[str, str], str]]:
        """Writes follower-side edges; returns how many were new per followee, and the followee keys
        existing edges had kept."""
        by_node: dict[str, list[storage_pb2.Edge]] = defaultdict(list)
        for follower, followee in edges:
            by_node[self.storage.node_for(follower)].append(
                storage_pb2.Edge(
                    follower=follower, followee=followee, hot=hot(followee), followee_key=key_of[(follower, followee)]
                )
            )
        replies = await _per_node(self.storage.add_following_many, by_node)
        created: Counter[str] = Counter()
        kept: dict[tuple[str, str], str] = {}
        for reply in replies:
            for entry in reply.states:
                created[entry.user] += entry.created
            kept.update(((e.follower, e.followee), e.followee_key) for e in reply.existing if e.followee_key)
        return created, kept
