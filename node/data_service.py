"""The data half of feedring.v1.Storage on a node: reads, and the writes this node coordinates.

Each read checks that this node holds the key's partition, reads the store, and encodes. Each write
RPC is served straight from its declaration (node/writes.py): this node coordinates it
(node/replication.py) and answers once a quorum of replicas has it. ApplyWrites is the other end: a
coordinator's forward, or a replayed hint, applied here by the same declarations.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from common import post_bytes
from common.config import MAX_SALT_BUCKETS
from common.errors import FeedringError, InvalidArgument, ReplicaBehind
from common.grpc_status import LAST_RESORT_KEY, grpc_errors
from node import keys
from node.feed_store import FeedStore
from node.local_writes import LocalWrites
from node.ownership import Ownership
from node.reads_first import ReadsFirst
from node.replication import Replicator
from node.timeline_cache import TimelineCache, posts_page
from node.writes import RPCS, ReplicatedWrite, by_name
from protos import storage_pb2

__all__ = ["DataServicer"]

_EDGE_FAMILIES = {
    storage_pb2.FOLLOWERS: keys.FOLLOWERS,
    storage_pb2.FOLLOWING: keys.FOLLOWING,
    storage_pb2.MUTED: keys.MUTES,
    storage_pb2.BLOCKED: keys.BLOCKS,
}


def _coordinated(replicator: Replicator, write: ReplicatedWrite[Any, Any]) -> Callable[..., Awaitable[Message]]:
    """A write RPC's handler: coordinated by this node."""

    async def handler(request: Message, context: grpc.aio.ServicerContext) -> Message:
        reply: Message = await replicator.write(write, request)
        return reply

    handler.__name__ = write.name  # names the method in error logs
    return grpc_errors(handler)


class DataServicer:
    def __init__(
        self,
        data: FeedStore,
        ownership: Ownership,
        local: LocalWrites,
        replicator: Replicator,
        reads_first: ReadsFirst,
        behind: Callable[[], int] = lambda: 0,
        timeline_cache: TimelineCache | None = None,
    ) -> None:
        self.data = data
        self.timeline_cache = timeline_cache if timeline_cache is not None else TimelineCache(0)
        self.ownership = ownership
        self.local = local
        self.reads_first = reads_first  # told of every read, so fan-out stands back
        # 0, or the wall time (ms) before which it may lack acknowledged writes (restarted and
        # catching up, or its disk back); now while its disk refuses writes.
        self.behind = behind
        for write in RPCS:
            setattr(self, write.name, _coordinated(replicator, write))

    # -- writes from other nodes -----------------------------------------------------------------

    @grpc_errors
    async def ApplyWrites(
        self, request: storage_pb2.ApplyWritesRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ApplyWritesResponse:
        """Each write is answered on its own: one refused write does not refuse the others."""
        results = []
        for write in request.writes:
            try:
                response, newer = await self._apply(write, request.epoch)
                results.append(storage_pb2.WriteResult(response=response, superseded_by=newer))
            except FeedringError as exc:
                results.append(storage_pb2.WriteResult(code=exc.code_number, message=exc.message, epoch=exc.epoch_seen))
        # Our wall clock, for the coordinator's estimate of how far apart the clocks are.
        return storage_pb2.ApplyWritesResponse(results=results, wall_ms=int(time.time() * 1000))

    async def _apply(self, write: storage_pb2.ReplicaWrite, epoch: int) -> tuple[bytes, int]:
        method = by_name(write.method)
        if method is None:
            raise InvalidArgument(f"{write.method!r} is not a replicated write")
        try:
            request = method.parse(write.request)
        except DecodeError as exc:
            raise InvalidArgument(f"{write.method} request does not decode: {exc}") from None
        setattr(request, "epoch", epoch)  # noqa: B010 (every write request has one; the type does not say so)
        reply, newer = await self.local.apply_noting_newer(method, request)
        encoded: bytes = reply.SerializeToString()
        return encoded, newer

    # -- reads -----------------------------------------------------------------------------------

    def _read_here(self, context: grpc.aio.ServicerContext) -> None:
        """A replica that may lack a write a caller was told is done refuses reads, unless the caller
        found no other replica that answers (it says so: the last resort). The caller learns the
        refusal at once and reads another replica (common/storage_client.py); a health check would
        tell it only at its next probe."""
        since_ms = self.behind()
        if since_ms and not any(key == LAST_RESORT_KEY for key, _ in context.invocation_metadata() or ()):
            raise ReplicaBehind(
                f"node {self.ownership.node_id} is catching up on writes it missed: read another replica", since_ms
            )

    @grpc_errors
    async def ReadPosts(
        self, request: storage_pb2.ReadPostsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ReadPostsResponse:
        self.ownership.check_read(request.epoch, request.author_key, *request.more_keys)
        self._read_here(context)
        self.reads_first.read_served()
        if request.before_id or len(request.more_keys) > MAX_SALT_BUCKETS:
            return self._read_posts(request)  # deeper pages; a returning reader's rebuild (many authors)
        # A first page of one author: a hot reader's own posts on each of its timeline reads, a hot
        # author's on each reload of a coordinator's hot-post cache (node/timeline_cache.py).
        page = posts_page((request.author_key, *request.more_keys))
        return self.timeline_cache.first_page(page, request.limit, lambda: self._read_posts(request))

    def _read_posts(self, request: storage_pb2.ReadPostsRequest) -> storage_pb2.ReadPostsResponse:
        """The reply built from the store."""
        posts = self.data.posts.read_posts(request.author_key, request.limit, request.before_id, request.more_keys)
        return storage_pb2.ReadPostsResponse(posts=posts)

    @grpc_errors
    async def ReadInbox(
        self, request: storage_pb2.ReadInboxRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ReadInboxResponse:
        self.ownership.check_read(request.epoch, request.consumer)
        self._read_here(context)
        self.reads_first.read_served()
        if request.before_id or request.after_id:
            return self._read_inbox(request)
        # A first page: most reads, and the same few readers again and again (node/timeline_cache.py).
        page = request.consumer.encode("utf-8")
        return self.timeline_cache.first_page(page, request.limit, lambda: self._read_inbox(request))

    def _read_inbox(self, request: storage_pb2.ReadInboxRequest) -> storage_pb2.ReadInboxResponse:
        """The reply built from the store: nothing in it but what the store holds now."""
        consumer, limit, before, after = request.consumer, request.limit, request.before_id, request.after_id
        hidden = self.data.relations.hidden_from(consumer)  # muted, blocked, blocking: never shown
        entries = self.data.inboxes.read_keyed(consumer, limit, before, after, hidden)
        hot_followees = self.data.graph.merged_at_read(consumer)  # the same step: nothing falls between
        if hidden:
            hot_followees = [a for a in hot_followees if a.encode("utf-8") not in hidden]
        reply = storage_pb2.ReadInboxResponse(hot_followees=hot_followees)
        last_read = self.data.readers.last_read(consumer)
        if last_read is not None:
            reply.last_read_ms, reply.rebuilding = last_read
        own: list[tuple[bytes, bytes]] = []
        if self.data.registry.state(consumer).salted:
            reply.own_posts_salted = True
        else:
            # The consumer's own posts: its home key is in this same partition, one more local scan.
            own = self.data.posts.newest_keyed(consumer, limit, before)
            if after:
                floor = keys.encoded_post_id(after)
                own = [(token, raw) for token, raw in own if token > floor]
        reply.posts.extend(post_bytes.merge_newest([entries, own], limit) if own else [raw for _, raw in entries])
        return reply

    @grpc_errors
    async def ListEdges(
        self, request: storage_pb2.ListEdgesRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ListEdgesResponse:
        self.ownership.check_read(request.epoch, request.user_key, *request.more_keys)
        self._read_here(context)
        family = _EDGE_FAMILIES.get(request.direction)
        if family is None:
            raise InvalidArgument("direction must be FOLLOWERS, FOLLOWING, MUTED or BLOCKED")
        users = self.data.graph.list_edges(family, request.user_key, request.after, request.limit, request.more_keys)
        return storage_pb2.ListEdgesResponse(users=users)

    @grpc_errors
    async def GetUserMeta(
        self, request: storage_pb2.GetUserMetaRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.UserMeta:
        self.ownership.check_read(request.epoch, request.user_key, *request.post_keys)
        self._read_here(context)
        counters = self.data.counters(request.user_key)
        salted_posts = sum(c.post_count for k in request.post_keys if (c := self.data.counters(k)))
        if counters is None:
            return storage_pb2.UserMeta(found=False, post_count=salted_posts)
        return storage_pb2.UserMeta(
            found=True,
            follower_count=self.data.registry.follower_count(request.user_key),
            following_count=counters.following_count,
            post_count=counters.post_count + salted_posts,
            state=self.data.registry.state(request.user_key).name,
        )

    @grpc_errors
    async def ListHotUsers(
        self, request: storage_pb2.ListHotUsersRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ListHotUsersResponse:
        self.ownership.requests_served += 1
        entries = self.data.registry.list_hot_users(self.ownership.owned)
        return storage_pb2.ListHotUsersResponse(
            users=[
                storage_pb2.HotUserEntry(
                    user=e.user, state=e.state.name, pinned=e.pinned, follower_count=e.follower_count, version=e.version
                )
                for e in entries
            ]
        )
