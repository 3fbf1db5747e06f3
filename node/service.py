"""feedring.v1.Storage on a node: decode, check ownership, call FeedStore, encode.

Store calls run on the event loop thread: each is a few LevelDB operations (microseconds), and
running them one at a time makes every method atomic with respect to the others, which is what the
read-in-the-same-step guarantees of StorePost and AddFollower rely on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from common.cluster_map import ClusterMap
from common.errors import FailedPrecondition, FeedringError, InvalidArgument, NotFound, WrongEpoch
from common.grpc_status import grpc_errors, grpc_errors_stream
from common.hot_state import HotState
from common.process_stats import rss_bytes
from node import keys, repair
from node.delivery import DeliveryDriver
from node.feed_store import FeedStore
from node.reads_first import ReadsFirst
from node.repair import Repairer
from node.replication import Replicator
from node.transfer import PartitionMover
from node.write_methods import WRITE, by_name
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
        replicator: Replicator | None = None,
        repairer: Repairer | None = None,
        reads_first: ReadsFirst | None = None,
    ) -> None:
        self.node_id = node_id
        self.reads_first = reads_first or ReadsFirst()  # fan-out's bounded share while reads arrive
        self.repairer = repairer
        self.replicator = replicator  # None: writes apply here only (a single-node test)
        self.feed_store = feed_store
        self.mover = mover
        self.persist_map = persist_map
        self.behind = behind  # told when a caller has a newer map than ours (catch up from peers)
        self.delivery = delivery  # carries out the delivery records StorePost and RemovePost write
        self.requests_served = 0
        self.catching_up = False  # restarted and not yet sent every hint its peers held for it
        self.set_map(cluster_map)

    def set_map(self, cluster_map: ClusterMap) -> None:
        self.map = cluster_map
        self.owned = cluster_map.owned_by(self.node_id)
        # Writes are taken for partitions a membership change is bringing here, too.
        self.writable = self.owned | frozenset(
            p for p, replicas in enumerate(cluster_map.pending_table) if self.node_id in replicas
        )

    def adopt_map(self, cluster_map: ClusterMap) -> bool:
        """Takes a newer map (persisted before use); an older or equal one is ignored."""
        if cluster_map.epoch <= self.map.epoch:
            return False
        if cluster_map.partitions != self.map.partitions and self.map.epoch:
            raise InvalidArgument("a cluster map must keep the partition count")
        self.persist_map(cluster_map)
        before = self.owned
        self.set_map(cluster_map)
        if not cluster_map.changing and self.mover.sealed:
            # A seal lasts until the change that made it commits (or is aborted): a source that
            # stays a replica of the partition (replication_factor > 1) takes writes again.
            self.mover.unseal(list(self.mover.sealed))
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

    def _own_for_read(self, epoch: int, *user_keys: str, writing: bool = False) -> None:
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
            if part not in (self.writable if writing else self.owned):
                raise WrongEpoch(
                    f"node {self.node_id} does not own partition {part} (key {user_key!r}) at epoch {self.map.epoch}",
                    self.map.epoch,
                )

    def _own(self, epoch: int, *user_keys: str) -> None:
        """For writes: as _own_for_read, and a partition sealed for hand-over refuses writes until the
        map that moves it is committed (the caller refreshes its map and retries)."""
        self._own_for_read(epoch, *user_keys, writing=True)
        if self.mover.sealed:
            for user_key in user_keys:
                part = self.feed_store.partition(user_key)
                if part in self.mover.sealed:
                    raise WrongEpoch(
                        f"partition {part} is being handed over from node {self.node_id}; retry shortly",
                        self.map.epoch,
                    )

    async def _in_slices(
        self, epoch: int, consumers: Sequence[str], apply: Callable[[Sequence[str]], int], posted_at_ms: int = 0
    ) -> int:
        """Applies a many-consumer write a slice at a time, as background work that stands back while
        reads arrive (node/reads_first.py), so timeline reads never queue behind a fan-out batch.
        Each consumer's write stays atomic; ownership (and sealing) is checked per slice, and a batch
        refused midway is simply retried whole (the writes are idempotent)."""
        done = 0
        for start in range(0, len(consumers), WRITE_SLICE):
            age_s = time.time() - posted_at_ms / 1000 if posted_at_ms else 0.0
            async with self.reads_first.slice(age_s):
                part = consumers[start : start + WRITE_SLICE]
                self._own(epoch, *part)
                done += apply(part)
        return done

    def _owed(self, *user_keys: str) -> None:
        """A write under these keys may have recorded work owed (node/delivery_log.py): start on it."""
        if self.delivery is not None:
            self.delivery.wake({self.feed_store.partition(k) for k in user_keys})

    # -- replicated writes (node/replication.py) -------------------------------------------------

    async def _write(self, name: str, request: Message) -> Message:
        """A write sent to this node: coordinated here, applied on every replica."""
        if self.replicator is None:
            return await self.apply(name, request)
        return await self.replicator.write(WRITE[name], request)

    async def apply(self, name: str, request: Message) -> Message:
        """This node's own part of a write (from its coordinator, which may be this node)."""
        appliers: dict[str, Callable[[Any], Awaitable[Message]]] = {
            "StorePost": self._store_post,
            "RemovePost": self._remove_post,
            "InsertInbox": self._insert_inbox,
            "RemoveFromInboxes": self._remove_from_inboxes,
            "AddFollowing": self._add_following,
            "RemoveFollowing": self._remove_following,
            "AddFollower": self._add_follower,
            "RemoveFollower": self._remove_follower,
            "AddFollowingMany": self._add_following_many,
            "AddFollowerMany": self._add_follower_many,
            "ReportFollowerCount": self._report_follower_count,
            "SetHotState": self._set_hot_state,
            "SetHotFollowing": self._set_hot_following,
            "FinishDeliveries": self._finish_deliveries,
        }
        return await appliers[name](request)

    @grpc_errors
    async def ApplyWrites(
        self, request: storage_pb2.ApplyWritesRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ApplyWritesResponse:
        results = []
        for write in request.writes:
            method = by_name(write.method)
            try:
                if method is None:
                    raise InvalidArgument(f"{write.method!r} is not a replicated write")
                try:
                    part = method.parse(write.request)
                except DecodeError as exc:
                    raise InvalidArgument(f"{write.method} request does not decode: {exc}") from None
                if "epoch" in part.DESCRIPTOR.fields_by_name:
                    part.epoch = request.epoch
                response = await self.apply(method.name, part)
                results.append(storage_pb2.WriteResult(response=response.SerializeToString()))
            except WrongEpoch as exc:
                results.append(storage_pb2.WriteResult(code=exc.code.value[0], message=exc.message, epoch=exc.epoch))
            except FeedringError as exc:
                results.append(storage_pb2.WriteResult(code=exc.code.value[0], message=exc.message))
        return storage_pb2.ApplyWritesResponse(results=results)

    async def _finish_deliveries(
        self, request: storage_pb2.FinishDeliveriesRequest
    ) -> storage_pb2.FinishDeliveriesResponse:
        self._own_for_read(request.epoch, *{f.author_key for f in request.finished}, writing=True)
        removed = 0
        for f in request.finished:
            part = self.feed_store.partition(f.author_key)
            key = keys.delivery_key(part, f.author_key, f.post_id, f.kind)
            removed += self.feed_store.finish_delivery(key, f.up_to_version or None)
        return storage_pb2.FinishDeliveriesResponse(removed=removed)

    @grpc_errors
    async def StorePost(self, request: storage_pb2.StorePostRequest, context: grpc.aio.ServicerContext) -> Message:
        return await self._write("StorePost", request)

    @grpc_errors
    async def RemovePost(
        self, request: storage_pb2.RemovePostRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.RemovePostResponse:
        reply = await self._write("RemovePost", request)
        assert isinstance(reply, storage_pb2.RemovePostResponse)
        if not reply.HasField("post"):
            raise NotFound(f"{request.author_key} has no post {request.post_id}")
        return reply

    @grpc_errors
    async def InsertInbox(self, request: storage_pb2.InsertInboxRequest, context: grpc.aio.ServicerContext) -> Message:
        return await self._write("InsertInbox", request)

    @grpc_errors
    async def RemoveFromInboxes(
        self, request: storage_pb2.RemoveFromInboxesRequest, context: grpc.aio.ServicerContext
    ) -> Message:
        return await self._write("RemoveFromInboxes", request)

    @grpc_errors
    async def AddFollowing(
        self, request: storage_pb2.AddFollowingRequest, context: grpc.aio.ServicerContext
    ) -> Message:
        return await self._write("AddFollowing", request)

    @grpc_errors
    async def RemoveFollowing(
        self, request: storage_pb2.RemoveFollowingRequest, context: grpc.aio.ServicerContext
    ) -> Message:
        return await self._write("RemoveFollowing", request)

    @grpc_errors
    async def AddFollower(self, request: storage_pb2.AddFollowerRequest, context: grpc.aio.ServicerContext) -> Message:
        return await self._write("AddFollower", request)

    @grpc_errors
    async def RemoveFollower(
        self, request: storage_pb2.RemoveFollowerRequest, context: grpc.aio.ServicerContext
    ) -> Message:
        return await self._write("RemoveFollower", request)

    @grpc_errors
    async def AddFollowingMany(self, request: storage_pb2.EdgeBatch, context: grpc.aio.ServicerContext) -> Message:
        return await self._write("AddFollowingMany", request)

    @grpc_errors
    async def AddFollowerMany(self, request: storage_pb2.EdgeBatch, context: grpc.aio.ServicerContext) -> Message:
        return await self._write("AddFollowerMany", request)

    @grpc_errors
    async def ReportFollowerCount(
        self, request: storage_pb2.FollowerCountReport, context: grpc.aio.ServicerContext
    ) -> Message:
        return await self._write("ReportFollowerCount", request)

    @grpc_errors
    async def SetHotState(self, request: storage_pb2.SetHotStateRequest, context: grpc.aio.ServicerContext) -> Message:
        return await self._write("SetHotState", request)

    @grpc_errors
    async def SetHotFollowing(
        self, request: storage_pb2.SetHotFollowingRequest, context: grpc.aio.ServicerContext
    ) -> Message:
        return await self._write("SetHotFollowing", request)

    @staticmethod
    def _posts(raws: list[bytes]) -> list[feed_pb2.Post]:
        return [feed_pb2.Post.FromString(raw) for raw in raws]

    # -- posts -----------------------------------------------------------------------------------

    async def _store_post(self, request: storage_pb2.StorePostRequest) -> storage_pb2.StorePostResponse:
        self._own(request.epoch, request.author_key)
        created, state = self.feed_store.store_post(request.author_key, request.post)
        if created:
            self._owed(request.author_key)
        return storage_pb2.StorePostResponse(created=created, state=state.name)

    async def _remove_post(self, request: storage_pb2.RemovePostRequest) -> storage_pb2.RemovePostResponse:
        self._own(request.epoch, request.author_key)
        post = self.feed_store.remove_post(request.author_key, request.post_id)
        if post is None:
            return storage_pb2.RemovePostResponse()  # the tombstone is written all the same
        self._owed(request.author_key)
        return storage_pb2.RemovePostResponse(post=post)

    @grpc_errors
    async def ReadPosts(
        self, request: storage_pb2.ReadPostsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ReadPostsResponse:
        self._own_for_read(request.epoch, request.author_key, *request.more_keys)
        self.reads_first.read_served()
        raws = self.feed_store.read_posts(request.author_key, request.limit, request.before_id, request.more_keys)
        return storage_pb2.ReadPostsResponse(posts=raws)

    # -- inboxes ---------------------------------------------------------------------------------

    async def _insert_inbox(self, request: storage_pb2.InsertInboxRequest) -> storage_pb2.InsertInboxResponse:
        inserted = await self._in_slices(
            request.epoch,
            request.consumers,
            lambda c: self.feed_store.insert_inbox(request.posts, c),
            posted_at_ms=min((p.created_at_ms for p in request.posts), default=0),
        )
        return storage_pb2.InsertInboxResponse(inserted=inserted)

    async def _remove_from_inboxes(
        self, request: storage_pb2.RemoveFromInboxesRequest
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
        self.reads_first.read_served()
        raws, hot_followees = self.feed_store.read_inbox(request.consumer, request.limit, request.before_id)
        return storage_pb2.ReadInboxResponse(posts=raws, hot_followees=hot_followees)

    # -- edges -----------------------------------------------------------------------------------

    async def _add_following(self, request: storage_pb2.AddFollowingRequest) -> storage_pb2.EdgeResponse:
        self._own(request.epoch, request.follower)
        created, followee_key = self.feed_store.graph.add_following(
            request.follower, request.followee, request.hot, request.followee_key, request.version
        )
        return storage_pb2.EdgeResponse(changed=created, followee_key=followee_key)

    async def _remove_following(self, request: storage_pb2.RemoveFollowingRequest) -> storage_pb2.EdgeResponse:
        self._own(request.epoch, request.follower)
        removed, followee_key = self.feed_store.graph.remove_following(
            request.follower, request.followee, request.version
        )
        return storage_pb2.EdgeResponse(changed=removed, followee_key=followee_key)

    async def _add_follower(self, request: storage_pb2.AddFollowerRequest) -> storage_pb2.AddFollowerResponse:
        author = request.author or request.followee_key
        self._own(request.epoch, request.followee_key, author)
        created, recent, state = self.feed_store.graph.add_follower(
            request.followee_key, request.follower, author, request.backfill_limit, request.version
        )
        if created:
            self._owed(request.followee_key)  # a salted key owes its user's home a count report
        return storage_pb2.AddFollowerResponse(created=created, recent_posts=self._posts(recent), state=state.name)

    async def _remove_follower(self, request: storage_pb2.RemoveFollowerRequest) -> storage_pb2.EdgeResponse:
        self._own(request.epoch, request.followee_key)
        changed, state = self.feed_store.graph.remove_follower(request.followee_key, request.follower, request.version)
        if changed:
            self._owed(request.followee_key)
        return storage_pb2.EdgeResponse(changed=changed, state=state.name)

    async def _add_following_many(self, request: storage_pb2.EdgeBatch) -> storage_pb2.EdgeBatchResponse:
        self._own(request.epoch, *{e.follower for e in request.edges})
        created, existing = self.feed_store.graph.add_following_many(
            ((e.follower, e.followee, e.hot, e.followee_key) for e in request.edges), request.version
        )
        return storage_pb2.EdgeBatchResponse(
            created=sum(created.values()),
            states=[storage_pb2.UserState(user=followee, created=n) for followee, n in created.items()],
            existing=[storage_pb2.Edge(follower=f, followee=u, followee_key=k) for f, u, k in existing],
        )

    async def _add_follower_many(self, request: storage_pb2.EdgeBatch) -> storage_pb2.EdgeBatchResponse:
        self._own(request.epoch, *{e.followee for e in request.edges})
        per_key = self.feed_store.graph.add_follower_many(
            ((e.followee, e.follower) for e in request.edges), request.version
        )
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

    async def _report_follower_count(self, request: storage_pb2.FollowerCountReport) -> storage_pb2.HotStateResponse:
        self._own(request.epoch, request.user)
        state = self.feed_store.report_follower_count(request.user, request.key, request.count, request.version)
        return storage_pb2.HotStateResponse(state=state.name)

    async def _set_hot_state(self, request: storage_pb2.SetHotStateRequest) -> storage_pb2.HotStateResponse:
        self._own(request.epoch, request.user)
        state, changed = self.feed_store.set_hot_state(
            request.user, HotState(request.state), [HotState(s) for s in request.expect], request.pin, request.version
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
                    user=e.user,
                    state=e.state.name,
                    pinned=e.pinned,
                    follower_count=e.follower_count,
                    version=e.version,
                )
                for e in entries
            ]
        )

    async def _set_hot_following(
        self, request: storage_pb2.SetHotFollowingRequest
    ) -> storage_pb2.SetHotFollowingResponse:
        changed = await self._in_slices(
            request.epoch,
            request.consumers,
            lambda c: self.feed_store.set_hot_following(
                request.followee, c, request.hot, request.posts, request.version
            ),
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
            await self.feed_store.recount_keys()

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
        await self.feed_store.recount_keys()
        return storage_pb2.DropPartitionsResponse(keys_deleted=deleted)

    # -- anti-entropy (node/repair.py) -----------------------------------------------------------

    def _held(self, partitions: Sequence[int]) -> None:
        not_held = set(partitions) - self.owned
        if not_held:
            raise WrongEpoch(
                f"node {self.node_id} holds no replica of partitions {sorted(not_held)[:10]} at epoch {self.map.epoch}",
                self.map.epoch,
            )

    @grpc_errors
    async def HeldDeliveries(
        self, request: storage_pb2.HeldDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.HeldDeliveriesResponse:
        self.requests_served += 1
        if any(keys.family_of(k) != keys.DELIVERIES for k in request.keys):
            raise InvalidArgument("only delivery record keys (family D) can be asked about")
        return storage_pb2.HeldDeliveriesResponse(held=[self.feed_store.store.get(k) is not None for k in request.keys])

    @grpc_errors
    async def GetDigests(
        self, request: storage_pb2.GetDigestsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.GetDigestsResponse:
        self._held(request.partitions)
        out = []
        for part in request.partitions:
            buckets = await asyncio.to_thread(repair.digests, self.feed_store, part)
            out.append(storage_pb2.PartitionDigest(partition=part, buckets=buckets))
        return storage_pb2.GetDigestsResponse(digests=out)

    @grpc_errors
    async def ReadBuckets(
        self, request: storage_pb2.ReadBucketsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ReadBucketsResponse:
        self._held([request.partition])
        if any(b >= repair.BUCKETS for b in request.buckets):
            raise InvalidArgument(f"buckets are numbered 0 to {repair.BUCKETS - 1}")
        entries = await asyncio.to_thread(repair.read_buckets, self.feed_store, request.partition, request.buckets)
        return storage_pb2.ReadBucketsResponse(entries=entries)

    @grpc_errors
    async def MergeEntries(
        self, request: storage_pb2.MergeEntriesRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.MergeEntriesResponse:
        self._held([request.partition])
        prefix = keys.partition_prefix(request.partition)
        if any(not e.key.startswith(prefix) for e in request.entries):
            raise InvalidArgument(f"every entry must be in partition {request.partition}")
        changed = repair.merge(self.feed_store, ((e.key, e.value) for e in request.entries))
        if changed and self.delivery is not None:
            self.delivery.wake({request.partition})  # a merged delete may owe a retraction
        return storage_pb2.MergeEntriesResponse(changed=changed)

    @grpc_errors_stream
    async def Repair(
        self, request: storage_pb2.RepairRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[storage_pb2.RepairProgress]:
        if self.repairer is None:
            raise FailedPrecondition(f"node {self.node_id} does not repair")
        partitions = sorted(set(request.partitions)) if request.partitions else sorted(self.owned)
        if request.catch_up:
            arriving = set(partitions) - self.writable
            if arriving:
                raise WrongEpoch(
                    f"node {self.node_id} is not receiving partitions {sorted(arriving)[:10]} "
                    f"at epoch {self.map.epoch}",
                    self.map.epoch,
                )
        else:
            self._held(partitions)
        async for progress in self.repairer.repair(partitions, request.max_keys_per_second, request.catch_up):
            yield progress
        if request.catch_up:
            await self.feed_store.recount_keys()

    def _delivery_stats(self, percentiles: bool = True) -> storage_pb2.DeliveryStats:
        stats = self.delivery.stats(percentiles) if self.delivery is not None else storage_pb2.DeliveryStats()
        stats.fanout_busy_s = self.reads_first.background_s
        stats.fanout_paused_s = self.reads_first.paused_s
        return stats

    def replication_stats(self) -> storage_pb2.ReplicationStats:
        stats = storage_pb2.ReplicationStats()
        if self.repairer is not None:
            stats.CopyFrom(self.repairer.stats)
        stats.catching_up = self.catching_up
        if self.replicator is not None:
            hints = self.replicator.hints
            stats.hints = hints.total
            stats.hints_by_target.update(hints.counts)
            stats.hints_replayed = hints.replayed
            stats.quorum_failures = self.replicator.quorum_failures
            stats.peers_down.extend(
                m.id for m in self.map.members if m.address in set(self.replicator.peers.health.suspected())
            )
        return stats

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
        return self.status()

    def status(self, percentiles: bool = True) -> storage_pb2.NodeStatus:
        """What `feedring status` shows and the node's metrics are built from (those without the
        lag percentiles, which cost a sort)."""
        return storage_pb2.NodeStatus(
            node_id=self.node_id,
            epoch=self.map.epoch,
            partitions_owned=len(self.owned),
            # Counts are kept as keys come and go; one can dip below zero for a moment while a
            # transfer's raw copy is not yet recounted.
            keys_by_family={
                keys.FAMILY_NAMES.get(family, repr(family)): max(count, 0)
                for family, count in sorted(self.feed_store.family_counts.items())
            },
            requests_served=self.requests_served,
            rss_bytes=rss_bytes(),
            delivery=self._delivery_stats(percentiles),
            replication=self.replication_stats(),
        )
