"""feedring.v1.Storage on a node: decode, check ownership, call FeedStore, encode.

Store calls run on the event loop thread: each is a few LevelDB operations (microseconds), and
running them one at a time makes every method atomic with respect to the others, which is what the
read-in-the-same-step guarantees of StorePost and AddFollower rely on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import grpc

from common.cluster_map import ClusterMap
from common.errors import FailedPrecondition, InvalidArgument, NotFound, WrongEpoch
from common.grpc_status import grpc_errors, grpc_errors_stream
from common.hot_state import HotState
from common.process_stats import rss_bytes
from node import keys
from node.delivery import DeliveryDriver
from node.feed_store import FeedStore
from node.transfer import PartitionMover
from protos import cluster_pb2, feed_pb2, storage_pb2, storage_pb2_grpc

__all__ = ["StorageServicer"]

log = logging.getLogger(__name__)

# Consumers written per event-loop turn in a fan-out batch (about a millisecond of work).
WRITE_SLICE = 64


class StorageServicer(storage_pb2_grpc.StorageServicer):
    def __init__(
        self,
        node_id: str,
        feed_store: FeedStore,
        cluster_map: ClusterMap,
        mover: PartitionMover,
        persist_map: Callable[[ClusterMap], None],
        behind: Callable[[int], None] = lambda epoch: None,
        delivery: DeliveryDriver | None = None,
    ) -> None:
        self.node_id = node_id
        self.feed_store = feed_store
        self.mover = mover
        self.persist_map = persist_map
        self.behind = behind  # told when a caller has a newer map than ours (catch up from peers)
        self.delivery = delivery  # carries out the delivery records StorePost and RemovePost write
        self.requests_served = 0
        self.set_map(cluster_map)

    def set_map(self, cluster_map: ClusterMap) -> None:
        self.map = cluster_map
        self.owned = cluster_map.owned_by(self.node_id)

    def adopt_map(self, cluster_map: ClusterMap) -> bool:
        """Takes a newer map (persisted before use); an older or equal one is ignored."""
        if cluster_map.epoch <= self.map.epoch:
            return False
        if cluster_map.partitions != self.map.partitions and self.map.epoch:
            raise InvalidArgument("a cluster map must keep the partition count")
        self.persist_map(cluster_map)
        before = self.owned
        self.set_map(cluster_map)
        if self.delivery is not None and self.owned - before:
            self.delivery.rescan()  # gained partitions arrive with the records they owe
        log.info(
            "cluster map adopted epoch=%d partitions_owned=%d gained=%d lost=%d change=%r",
            cluster_map.epoch,
            len(self.owned),
            len(self.owned - before),
            len(before - self.owned),
            cluster_map.change,
        )
        return True

    def _own_for_read(self, epoch: int, *user_keys: str) -> None:
        """Refuses keys whose partition this node does not hold. `epoch` is the caller's map epoch:
        a newer one than ours means we missed a map (down during a change) and must catch up; an
        older one is the caller's to refresh, which our refusal (with our epoch) makes it do."""
        self.requests_served += 1
        if epoch > self.map.epoch:
            self.behind(epoch)
        for user_key in user_keys:
            if not user_key:
                raise InvalidArgument("empty user key")
            part = self.feed_store.partition(user_key)
            if part not in self.owned:
                raise WrongEpoch(
                    f"node {self.node_id} does not own partition {part} (key {user_key!r}) at epoch {self.map.epoch}",
                    self.map.epoch,
                )

    def _own(self, epoch: int, *user_keys: str) -> None:
        """For writes: as _own_for_read, and a partition sealed for hand-over refuses writes until the
        map that moves it is committed (the caller refreshes its map and retries)."""
        self._own_for_read(epoch, *user_keys)
        if self.mover.sealed:
            for user_key in user_keys:
                part = self.feed_store.partition(user_key)
                if part in self.mover.sealed:
                    raise WrongEpoch(
                        f"partition {part} is being handed over from node {self.node_id}; retry shortly",
                        self.map.epoch,
                    )

    async def _in_slices(self, epoch: int, consumers: Sequence[str], apply: Callable[[Sequence[str]], int]) -> int:
        """Applies a many-consumer write a slice at a time, yielding to other requests between
        slices, so a big fan-out batch does not stall timeline reads behind it. Each consumer's
        write stays atomic; ownership (and sealing) is checked per slice, and a batch refused
        midway is simply retried whole (the writes are idempotent)."""
        done = 0
        for start in range(0, len(consumers), WRITE_SLICE):
            part = consumers[start : start + WRITE_SLICE]
            self._own(epoch, *part)
            done += apply(part)
            if start + WRITE_SLICE < len(consumers):
                await asyncio.sleep(0)
        return done

    def _owed(self, *user_keys: str) -> None:
        """A write under these keys may have recorded work owed (node/delivery_log.py): start on it."""
        if self.delivery is not None:
            self.delivery.wake({self.feed_store.partition(k) for k in user_keys})

    @staticmethod
    def _posts(raws: list[bytes]) -> list[feed_pb2.Post]:
        return [feed_pb2.Post.FromString(raw) for raw in raws]

    # -- posts -----------------------------------------------------------------------------------

    @grpc_errors
    async def StorePost(
        self, request: storage_pb2.StorePostRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.StorePostResponse:
        self._own(request.epoch, request.author_key)
        created, state = self.feed_store.store_post(request.author_key, request.post)
        if created:
            self._owed(request.author_key)
        return storage_pb2.StorePostResponse(created=created, state=state.name)

    @grpc_errors
    async def RemovePost(
        self, request: storage_pb2.RemovePostRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.RemovePostResponse:
        self._own(request.epoch, request.author_key)
        post = self.feed_store.remove_post(request.author_key, request.post_id)
        if post is None:
            raise NotFound(f"{request.author_key} has no post {request.post_id}")
        self._owed(request.author_key)
        return storage_pb2.RemovePostResponse(post=post)

    @grpc_errors
    async def ReadPosts(
        self, request: storage_pb2.ReadPostsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ReadPostsResponse:
        self._own_for_read(request.epoch, request.author_key, *request.more_keys)
        raws = self.feed_store.read_posts(request.author_key, request.limit, request.before_id, request.more_keys)
        return storage_pb2.ReadPostsResponse(posts=self._posts(raws))

    # -- inboxes ---------------------------------------------------------------------------------

    @grpc_errors
    async def InsertInbox(
        self, request: storage_pb2.InsertInboxRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.InsertInboxResponse:
        inserted = await self._in_slices(
            request.epoch, request.consumers, lambda c: self.feed_store.insert_inbox(request.posts, c)
        )
        return storage_pb2.InsertInboxResponse(inserted=inserted)

    @grpc_errors
    async def RemoveFromInboxes(
        self, request: storage_pb2.RemoveFromInboxesRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.RemoveFromInboxesResponse:
        removed = await self._in_slices(
            request.epoch, request.consumers, lambda c: self.feed_store.remove_from_inboxes(request.post_id, c)
        )
        return storage_pb2.RemoveFromInboxesResponse(removed=removed)

    @grpc_errors
    async def ReadInbox(
        self, request: storage_pb2.ReadInboxRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ReadInboxResponse:
        self._own_for_read(request.epoch, request.consumer)
        raws, hot_followees = self.feed_store.read_inbox(request.consumer, request.limit, request.before_id)
        return storage_pb2.ReadInboxResponse(posts=self._posts(raws), hot_followees=hot_followees)

    # -- edges -----------------------------------------------------------------------------------

    @grpc_errors
    async def AddFollowing(
        self, request: storage_pb2.AddFollowingRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.EdgeResponse:
        self._own(request.epoch, request.follower)
        created, followee_key = self.feed_store.graph.add_following(
            request.follower, request.followee, request.hot, request.followee_key
        )
        return storage_pb2.EdgeResponse(changed=created, followee_key=followee_key)

    @grpc_errors
    async def RemoveFollowing(
        self, request: storage_pb2.RemoveFollowingRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.EdgeResponse:
        self._own(request.epoch, request.follower)
        removed, followee_key = self.feed_store.graph.remove_following(request.follower, request.followee)
        return storage_pb2.EdgeResponse(changed=removed, followee_key=followee_key)

    @grpc_errors
    async def AddFollower(
        self, request: storage_pb2.AddFollowerRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.AddFollowerResponse:
        author = request.author or request.followee_key
        self._own(request.epoch, request.followee_key, author)
        created, recent, state = self.feed_store.graph.add_follower(
            request.followee_key, request.follower, author, request.backfill_limit
        )
        if created:
            self._owed(request.followee_key)  # a salted key owes its user's home a count report
        return storage_pb2.AddFollowerResponse(created=created, recent_posts=self._posts(recent), state=state.name)

    @grpc_errors
    async def RemoveFollower(
        self, request: storage_pb2.RemoveFollowerRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.EdgeResponse:
        self._own(request.epoch, request.followee_key)
        changed, state = self.feed_store.graph.remove_follower(request.followee_key, request.follower)
        if changed:
            self._owed(request.followee_key)
        return storage_pb2.EdgeResponse(changed=changed, state=state.name)

    @grpc_errors
    async def AddFollowingMany(
        self, request: storage_pb2.EdgeBatch, context: grpc.aio.ServicerContext
    ) -> storage_pb2.EdgeBatchResponse:
        self._own(request.epoch, *{e.follower for e in request.edges})
        created, existing = self.feed_store.graph.add_following_many(
            (e.follower, e.followee, e.hot, e.followee_key) for e in request.edges
        )
        return storage_pb2.EdgeBatchResponse(
            created=sum(created.values()),
            states=[storage_pb2.UserState(user=followee, created=n) for followee, n in created.items()],
            existing=[storage_pb2.Edge(follower=f, followee=u, followee_key=k) for f, u, k in existing],
        )

    @grpc_errors
    async def AddFollowerMany(
        self, request: storage_pb2.EdgeBatch, context: grpc.aio.ServicerContext
    ) -> storage_pb2.EdgeBatchResponse:
        self._own(request.epoch, *{e.followee for e in request.edges})
        per_key = self.feed_store.graph.add_follower_many((e.followee, e.follower) for e in request.edges)
        self._owed(*(key for key, (created, _) in per_key.items() if created))
        return storage_pb2.EdgeBatchResponse(
            created=sum(created for created, _ in per_key.values()),
            states=[
                storage_pb2.UserState(user=key, state=state.name, created=created)
                for key, (created, state) in per_key.items()
            ],
        )

    @grpc_errors
    async def ListEdges(
        self, request: storage_pb2.ListEdgesRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ListEdgesResponse:
        self._own_for_read(request.epoch, request.user_key, *request.more_keys)
        if request.direction == storage_pb2.FOLLOWERS:
            family = keys.FOLLOWERS
        elif request.direction == storage_pb2.FOLLOWING:
            family = keys.FOLLOWING
        else:
            raise InvalidArgument("direction must be FOLLOWERS or FOLLOWING")
        users = self.feed_store.graph.list_edges(
            family, request.user_key, request.after, request.limit, request.more_keys
        )
        return storage_pb2.ListEdgesResponse(users=users)

    # -- counters and status ---------------------------------------------------------------------

    @grpc_errors
    async def GetUserMeta(
        self, request: storage_pb2.GetUserMetaRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.UserMeta:
        self._own_for_read(request.epoch, request.user_key, *request.post_keys)
        counters = self.feed_store.user_counters(request.user_key)
        salted_posts = sum(c.post_count for k in request.post_keys if (c := self.feed_store.user_counters(k)))
        if counters is None:
            return storage_pb2.UserMeta(found=False, post_count=salted_posts)
        return storage_pb2.UserMeta(
            found=True,
            follower_count=self.feed_store.follower_count(request.user_key),
            following_count=counters.following_count,
            post_count=counters.post_count + salted_posts,
            state=self.feed_store.hot_state(request.user_key).name,
        )

    # -- hot users -------------------------------------------------------------------------------

    @grpc_errors
    async def ReportFollowerCount(
        self, request: storage_pb2.FollowerCountReport, context: grpc.aio.ServicerContext
    ) -> storage_pb2.HotStateResponse:
        self._own(request.epoch, request.user)
        state = self.feed_store.report_follower_count(request.user, request.key, request.count, request.version)
        return storage_pb2.HotStateResponse(state=state.name)

    @grpc_errors
    async def SetHotState(
        self, request: storage_pb2.SetHotStateRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.HotStateResponse:
        self._own(request.epoch, request.user)
        state, changed = self.feed_store.set_hot_state(
            request.user, HotState(request.state), [HotState(s) for s in request.expect], request.pin
        )
        if changed:
            log.info("hot state changed user=%s state=%s pinned=%s", request.user, state.name, request.pin)
        return storage_pb2.HotStateResponse(state=state.name, changed=changed)

    @grpc_errors
    async def ListHotUsers(
        self, request: storage_pb2.ListHotUsersRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ListHotUsersResponse:
        self.requests_served += 1
        entries = self.feed_store.list_hot_users(self.owned)
        return storage_pb2.ListHotUsersResponse(
            users=[
                storage_pb2.HotUserEntry(
                    user=e.user, state=e.state.name, pinned=e.pinned, follower_count=e.follower_count
                )
                for e in entries
            ]
        )

    @grpc_errors
    async def SetHotFollowing(
        self, request: storage_pb2.SetHotFollowingRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.SetHotFollowingResponse:
        changed = await self._in_slices(
            request.epoch,
            request.consumers,
            lambda c: self.feed_store.set_hot_following(request.followee, c, request.hot, request.posts),
        )
        return storage_pb2.SetHotFollowingResponse(changed=changed)

    # -- membership changes ----------------------------------------------------------------------

    @grpc_errors
    async def SetClusterMap(
        self, request: cluster_pb2.ClusterMap, context: grpc.aio.ServicerContext
    ) -> storage_pb2.SetClusterMapResponse:
        adopted = self.adopt_map(ClusterMap.from_proto(request))
        return storage_pb2.SetClusterMapResponse(epoch=self.map.epoch, adopted=adopted)

    @grpc_errors_stream
    async def StreamPartitions(
        self, request: storage_pb2.StreamPartitionsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[storage_pb2.PartitionChunk]:
        not_owned = set(request.partitions) - self.owned
        if not_owned:
            raise FailedPrecondition(
                f"node {self.node_id} does not own partitions {sorted(not_owned)[:10]} at epoch {self.map.epoch}"
            )
        async for chunk in self.mover.stream(
            list(request.partitions), request.max_keys_per_second, request.destination
        ):
            yield chunk

    @grpc_errors_stream
    async def PullPartitions(
        self, request: storage_pb2.PullPartitionsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[storage_pb2.PullProgress]:
        owned = set(request.partitions) & self.owned
        if owned:
            raise FailedPrecondition(
                f"node {self.node_id} already owns partitions {sorted(owned)[:10]}: refusing to overwrite them"
            )
        try:
            async for progress in self.mover.pull(request):
                yield progress
        finally:
            await asyncio.to_thread(self.feed_store.count_keys)

    @grpc_errors
    async def SealPartitions(
        self, request: storage_pb2.SealPartitionsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.SealPartitionsResponse:
        if request.unseal:
            self.mover.unseal(request.partitions)
        else:
            self.mover.seal(request.partitions)
        log.info("partitions %s count=%d", "unsealed" if request.unseal else "sealed", len(request.partitions))
        return storage_pb2.SealPartitionsResponse()

    @grpc_errors
    async def DropPartitions(
        self, request: storage_pb2.DropPartitionsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.DropPartitionsResponse:
        owned = set(request.partitions) & self.owned
        if owned:
            raise FailedPrecondition(
                f"node {self.node_id} still owns partitions {sorted(owned)[:10]} at epoch {self.map.epoch}; "
                "only partitions moved away can be dropped"
            )
        self.mover.unseal(request.partitions)
        deleted = await self.mover.drop(list(request.partitions))
        await asyncio.to_thread(self.feed_store.count_keys)
        return storage_pb2.DropPartitionsResponse(keys_deleted=deleted)

    @grpc_errors
    async def GetClusterMap(
        self, request: storage_pb2.GetClusterMapRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.ClusterMap:
        if request.known_epoch and request.known_epoch >= self.map.epoch:
            return cluster_pb2.ClusterMap(epoch=self.map.epoch)  # nothing newer: skip the table
        return self.map.to_proto()

    @grpc_errors
    async def GetNodeStatus(
        self, request: storage_pb2.GetNodeStatusRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.NodeStatus:
        return storage_pb2.NodeStatus(
            node_id=self.node_id,
            epoch=self.map.epoch,
            partitions_owned=len(self.owned),
            keys_by_family={
                keys.FAMILY_NAMES.get(family, repr(family)): count
                for family, count in sorted(self.feed_store.family_counts.items())
            },
            requests_served=self.requests_served,
            rss_bytes=rss_bytes(),
            delivery=self.delivery.stats() if self.delivery is not None else None,
        )
