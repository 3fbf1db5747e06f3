"""Every replicated write a node takes, declared once: its request and response types, the user keys
whose partitions it writes, and the store call that applies one replica's part.

A declaration is all the rest of the node needs: the data servicer serves each as a Storage RPC that
this node coordinates (node/replication.py forwards it to the other replicas, node/local_writes.py
applies this node's part), a hint keeps one as its name and encoded request (node/hints.py), and
the name on the wire (storage.proto's ReplicaWrite) finds the declaration again. Adding a write is
one declaration here, its store method, and its proto messages (plus, for routers, its line in
common/storage_client.py).

Two shapes:
- ``AtomicWrite``: one atomic store batch (a post, an edge, a registry entry);
- ``FanoutWrite``: a many-consumer inbox write, applied as background work a slice of consumers at a
  time (node/reads_first.py), so a replica may take longer to answer than a user's write; liveness
  comes from the failure detector, not that wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from common.hot_state import HotState
from node.feed_store import FeedStore
from protos import feed_pb2
from protos import storage_pb2 as pb

__all__ = ["ReplicatedWrite", "AtomicWrite", "FanoutWrite", "WRITES", "BY_NAME", "by_name", "RPCS"]

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


@dataclass(frozen=True, kw_only=True)
class ReplicatedWrite(Generic[Req, Resp]):
    name: str  # the Storage RPC it is served as, and its name in ReplicaWrite and hints
    request: type[Req]
    response: type[Resp]
    # The user keys whose partitions the write changes: which replicas must have it.
    keys: Callable[[Req], Sequence[str]]
    # Many-key writes: the request cut down to the keys one replica holds (None: one key).
    subset: Callable[[Req, set[str]], Req] | None = None
    versioned: bool = False  # carries a version the coordinator stamps (node/versioned.py)
    owes_delivery: bool = False  # may write a delivery record: the driver looks at once
    rpc: bool = True  # served as a Storage RPC of its own (not only inside ApplyWrites)
    coalesced: bool = False  # background work: forwarded with others to the same peer (node/outbox.py)
    # A bulk load's batch (thousands of edges): a replica gets the background deadline, not the
    # one-write replica timeout, before it counts as missed (a busy node takes seconds for one).
    bulk: bool = False
    # What the coordinator forwards to the other replicas, given its own reply (None: it holds no
    # key of the write); default: the request itself.
    forwarded: Callable[[FeedStore, Req, Resp | None], Req] | None = None
    # The caller's answer from the coordinator's reply and the other replicas' (default: the first).
    answer: Callable[[Resp, list[Resp]], Resp] | None = None

    def parse(self, raw: bytes) -> Req:
        request: Req = self.request.FromString(raw)
        return request

    def limited(self, request: Req, keys: Sequence[str]) -> Req:
        if self.subset is None:
            return request
        return self.subset(request, set(keys))


@dataclass(frozen=True, kw_only=True)
class AtomicWrite(ReplicatedWrite[Req, Resp]):
    apply: Callable[[FeedStore, Req], Resp]
    # The keys whose ownership a replica checks before applying (default: `keys`).
    checked: Callable[[Req], Sequence[str]] | None = None
    sealed_ok: bool = False  # allowed on a partition sealed for hand-over

    def checked_keys(self, request: Req) -> Sequence[str]:
        return (self.checked or self.keys)(request)


@dataclass(frozen=True, kw_only=True)
class FanoutWrite(ReplicatedWrite[Req, Resp]):
    # Applies the write for some of the request's consumers; returns how many entries changed.
    apply_slice: Callable[[FeedStore, Req, Sequence[str]], int]
    reply: Callable[[int], Resp]
    # When the oldest post in it was written: fan-out of old posts gets a bigger share of the loop.
    posted_at_ms: Callable[[Req], int] | None = None


def _consumers(request: Any, keep: set[str]) -> Any:
    out = type(request)()
    out.CopyFrom(request)
    del out.consumers[:]
    out.consumers.extend(c for c in request.consumers if c in keep)
    return out


def _edges_by(field: str) -> Callable[[pb.EdgeBatch, set[str]], pb.EdgeBatch]:
    def subset(request: pb.EdgeBatch, keep: set[str]) -> pb.EdgeBatch:
        out = pb.EdgeBatch(epoch=request.epoch, version=request.version)
        out.edges.extend(e for e in request.edges if getattr(e, field) in keep)
        return out

    return subset


# -- posts -----------------------------------------------------------------------------------------


def _store_post(data: FeedStore, r: pb.StorePostRequest) -> pb.StorePostResponse:
    created, state, existing_id = data.posts.store_post(r.author_key, r.post, r.request_id, r.replica)
    return pb.StorePostResponse(created=created, state=state.name, existing_id=existing_id)


def _store_post_forwarded(
    data: FeedStore, r: pb.StorePostRequest, reply: pb.StorePostResponse | None
) -> pb.StorePostRequest:
    """The replicas' copy: marked as one (a replica keeps the later of two attempts), and for a
    retry whose first attempt this coordinator holds, that post, so it is on a quorum too."""
    out = pb.StorePostRequest()
    out.CopyFrom(r)
    out.replica = True
    if reply is not None and reply.existing_id:
        raw = data.posts.get(r.author_key, reply.existing_id)
        if raw is None:
            out.replica = False  # gone since (deleted): the replicas only look the request up
        else:
            out.post.ParseFromString(raw)
    return out


def _store_post_answer(mine: pb.StorePostResponse, others: list[pb.StorePostResponse]) -> pb.StorePostResponse:
    """A replica that kept a later attempt than the one forwarded answers with it: that post is
    the one every replica ends with, so it is the one the client is told about."""
    later = max((o.existing_id for o in others), default=0)
    if later > mine.existing_id:  # a replica refuses a forwarded copy only for a later attempt
        return pb.StorePostResponse(created=False, state=mine.state, existing_id=later)
    return mine


def _remove_post(data: FeedStore, r: pb.RemovePostRequest) -> pb.RemovePostResponse:
    # The tombstone is written either way; dated by the coordinator (a hint from before dates: now).
    post = data.posts.remove_post(r.author_key, r.post_id, data.clock.stamp(r.version))
    return pb.RemovePostResponse(post=post) if post is not None else pb.RemovePostResponse()


def _removed_on_any_replica(mine: pb.RemovePostResponse, others: list[pb.RemovePostResponse]) -> pb.RemovePostResponse:
    """The post as a replica of the quorum held it: a coordinator that missed the post (down when it
    was stored, or its copy still in a hint) must not answer "no such post" for an acknowledged one."""
    if mine.HasField("post"):
        return mine
    return next((other for other in others if other.HasField("post")), mine)


STORE_POST = AtomicWrite(
    name="StorePost",
    request=pb.StorePostRequest,
    response=pb.StorePostResponse,
    keys=lambda r: [r.author_key],
    apply=_store_post,
    owes_delivery=True,
    forwarded=_store_post_forwarded,
    answer=_store_post_answer,
)
REMOVE_POST = AtomicWrite(
    name="RemovePost",
    request=pb.RemovePostRequest,
    response=pb.RemovePostResponse,
    keys=lambda r: [r.author_key],
    apply=_remove_post,
    owes_delivery=True,
    versioned=True,  # the version dates the tombstone, for its collection (node/tombstones.py)
    answer=_removed_on_any_replica,
)

# -- inboxes ---------------------------------------------------------------------------------------

INSERT_INBOX = FanoutWrite(
    name="InsertInbox",
    request=pb.InsertInboxRequest,
    response=pb.InsertInboxResponse,
    keys=lambda r: r.consumers,
    subset=_consumers,
    apply_slice=lambda data, r, consumers: data.inboxes.insert(r.posts, consumers),
    reply=lambda n: pb.InsertInboxResponse(inserted=n),
    posted_at_ms=lambda r: min((p.created_at_ms for p in r.posts), default=0),
)
REMOVE_FROM_INBOXES = FanoutWrite(
    name="RemoveFromInboxes",
    request=pb.RemoveFromInboxesRequest,
    response=pb.RemoveFromInboxesResponse,
    keys=lambda r: r.consumers,
    subset=_consumers,
    apply_slice=lambda data, r, consumers: data.inboxes.remove(r.post_id, consumers),
    reply=lambda n: pb.RemoveFromInboxesResponse(removed=n),
)

# -- edges -----------------------------------------------------------------------------------------


def _add_following(data: FeedStore, r: pb.AddFollowingRequest) -> pb.EdgeResponse:
    created, kept, refused = data.graph.add_following(r.follower, r.followee, r.hot, r.followee_key, r.version)
    return pb.EdgeResponse(changed=created, followee_key=kept, refused=refused)


def _remove_following(data: FeedStore, r: pb.RemoveFollowingRequest) -> pb.EdgeResponse:
    removed, kept = data.graph.remove_following(r.follower, r.followee, r.version)
    return pb.EdgeResponse(changed=removed, followee_key=kept)


def _removed_on_any(mine: pb.EdgeResponse, others: list[pb.EdgeResponse]) -> pb.EdgeResponse:
    """An edge removed on any replica of the quorum was there to remove: a coordinator that missed
    the follow (down, or restarted since) must not answer "was not following", nor lose the key the
    edge was kept with."""
    answer = pb.EdgeResponse()
    answer.CopyFrom(mine)
    for other in others:
        answer.changed |= other.changed
        answer.followee_key = answer.followee_key or other.followee_key
    return answer


def _add_follower(data: FeedStore, r: pb.AddFollowerRequest) -> pb.AddFollowerResponse:
    author = r.author or r.followee_key
    created, recent, state, refused = data.graph.add_follower(
        r.followee_key, r.follower, author, r.backfill_limit, r.version
    )
    posts = [feed_pb2.Post.FromString(raw) for raw in recent]
    deleted = data.posts.deleted_since(author, posts[-1].id if posts else 0) if r.backfill_limit else []
    return pb.AddFollowerResponse(
        created=created, recent_posts=posts, state=state.name, refused=refused, deleted_ids=deleted
    )


def _backfill_of_the_quorum(
    mine: pb.AddFollowerResponse, others: list[pb.AddFollowerResponse]
) -> pb.AddFollowerResponse:
    """The newest posts over every replica of the quorum, less those any of them knows deleted: a
    post acknowledged just before this follow is on a quorum, so on one of these replicas, though
    perhaps not on the coordinator (its copy still on the way) — and its delivery may have paged
    the followers before this edge was there (CI, 2026-12-05: a follow right after a post never
    showed it)."""
    if not others:
        return mine
    replies = [mine, *others]
    deleted = {i for reply in replies for i in reply.deleted_ids}
    posts = {p.id: p for reply in replies for p in reply.recent_posts if p.id not in deleted}
    answer = pb.AddFollowerResponse()
    answer.CopyFrom(mine)
    del answer.recent_posts[:]
    limit = max(len(reply.recent_posts) for reply in replies)  # each is at most the request's
    answer.recent_posts.extend(posts[i] for i in sorted(posts, reverse=True)[:limit])
    return answer


def _remove_follower(data: FeedStore, r: pb.RemoveFollowerRequest) -> pb.EdgeResponse:
    changed, state = data.graph.remove_follower(r.followee_key, r.follower, r.version)
    return pb.EdgeResponse(changed=changed, state=state.name)


def _add_following_many(data: FeedStore, r: pb.EdgeBatch) -> pb.EdgeBatchResponse:
    created, existing = data.graph.add_following_many(
        ((e.follower, e.followee, e.hot, e.followee_key) for e in r.edges), r.version
    )
    return pb.EdgeBatchResponse(
        created=sum(created.values()),
        states=[pb.UserState(user=followee, created=n) for followee, n in created.items()],
        existing=[pb.Edge(follower=f, followee=u, followee_key=k) for f, u, k in existing],
    )


def _add_follower_many(data: FeedStore, r: pb.EdgeBatch) -> pb.EdgeBatchResponse:
    per_key = data.graph.add_follower_many(((e.followee, e.follower) for e in r.edges), r.version)
    return pb.EdgeBatchResponse(
        created=sum(created for created, _ in per_key.values()),
        states=[pb.UserState(user=key, state=state.name, created=created) for key, (created, state) in per_key.items()],
    )


ADD_FOLLOWING = AtomicWrite(
    name="AddFollowing",
    request=pb.AddFollowingRequest,
    response=pb.EdgeResponse,
    keys=lambda r: [r.follower],
    apply=_add_following,
    versioned=True,
)
REMOVE_FOLLOWING = AtomicWrite(
    name="RemoveFollowing",
    request=pb.RemoveFollowingRequest,
    response=pb.EdgeResponse,
    keys=lambda r: [r.follower],
    apply=_remove_following,
    versioned=True,
    answer=_removed_on_any,
)
ADD_FOLLOWER = AtomicWrite(
    name="AddFollower",
    request=pb.AddFollowerRequest,
    response=pb.AddFollowerResponse,
    keys=lambda r: [r.followee_key],
    # The backfill reads the author's posts in the same step: its partition must be here too.
    checked=lambda r: [r.followee_key, r.author or r.followee_key],
    apply=_add_follower,
    answer=_backfill_of_the_quorum,
    versioned=True,
    owes_delivery=True,  # a salted key owes its user's home a count report
)
REMOVE_FOLLOWER = AtomicWrite(
    name="RemoveFollower",
    request=pb.RemoveFollowerRequest,
    response=pb.EdgeResponse,
    keys=lambda r: [r.followee_key],
    apply=_remove_follower,
    versioned=True,
    answer=_removed_on_any,
    owes_delivery=True,
)
ADD_FOLLOWING_MANY = AtomicWrite(
    name="AddFollowingMany",
    request=pb.EdgeBatch,
    response=pb.EdgeBatchResponse,
    keys=lambda r: list({e.follower for e in r.edges}),
    subset=_edges_by("follower"),
    apply=_add_following_many,
    bulk=True,
    versioned=True,
)
ADD_FOLLOWER_MANY = AtomicWrite(
    name="AddFollowerMany",
    request=pb.EdgeBatch,
    response=pb.EdgeBatchResponse,
    keys=lambda r: list({e.followee for e in r.edges}),
    subset=_edges_by("followee"),
    apply=_add_follower_many,
    bulk=True,
    versioned=True,
    owes_delivery=True,
)

SET_RELATION = AtomicWrite(
    name="SetRelation",
    request=pb.SetRelationRequest,
    response=pb.SetRelationResponse,
    keys=lambda r: [r.user],
    apply=lambda data, r: pb.SetRelationResponse(
        changed=data.relations.change(r.user, r.relation, r.target, r.on, r.version)
    ),
    versioned=True,
)

TOUCH_READER = AtomicWrite(
    name="TouchReader",
    request=pb.TouchReaderRequest,
    response=pb.TouchReaderResponse,
    keys=lambda r: [r.user],
    apply=lambda data, r: pb.TouchReaderResponse(changed=data.readers.touch(r.user, r.read_ms, r.rebuilding)),
)

# -- hot users -------------------------------------------------------------------------------------


def _set_hot_state(data: FeedStore, r: pb.SetHotStateRequest) -> pb.HotStateResponse:
    state, changed = data.registry.set_state(
        r.user, HotState(r.state), [HotState(s) for s in r.expect], r.pin, r.version
    )
    if changed:
        log.info("hot state changed user=%s state=%s pinned=%s", r.user, state.name, r.pin)
    return pb.HotStateResponse(state=state.name, changed=changed)


REPORT_FOLLOWER_COUNT = AtomicWrite(
    name="ReportFollowerCount",
    request=pb.FollowerCountReport,
    response=pb.HotStateResponse,
    keys=lambda r: [r.user],
    apply=lambda data, r: pb.HotStateResponse(
        state=data.registry.report_follower_count(r.user, r.key, r.count, r.version).name
    ),
)
SET_HOT_STATE = AtomicWrite(
    name="SetHotState",
    request=pb.SetHotStateRequest,
    response=pb.HotStateResponse,
    keys=lambda r: [r.user],
    apply=_set_hot_state,
    versioned=True,
)
SET_HOT_FOLLOWING = FanoutWrite(
    name="SetHotFollowing",
    request=pb.SetHotFollowingRequest,
    response=pb.SetHotFollowingResponse,
    keys=lambda r: r.consumers,
    subset=_consumers,
    apply_slice=lambda data, r, consumers: data.graph.set_hot_following(
        r.followee, consumers, r.hot, r.posts, r.version
    ),
    reply=lambda n: pb.SetHotFollowingResponse(changed=n),
    versioned=True,
)

# -- deliveries ------------------------------------------------------------------------------------


def _finish_deliveries(data: FeedStore, r: pb.FinishDeliveriesRequest) -> pb.FinishDeliveriesResponse:
    removed = 0
    for f in r.finished:
        key = data.deliveries.key(f.author_key, f.post_id, f.kind)
        removed += data.deliveries.finish(key, f.up_to_version or None)
    return pb.FinishDeliveriesResponse(removed=removed)


def _finished_of(request: pb.FinishDeliveriesRequest, keep: set[str]) -> pb.FinishDeliveriesRequest:
    out = pb.FinishDeliveriesRequest(epoch=request.epoch)
    out.finished.extend(f for f in request.finished if f.author_key in keep)
    return out


# The node driving deliveries tells the partition's other replicas which it finished, many at once
# (node/finish_notes.py; not an RPC of its own).
FINISH_DELIVERIES = AtomicWrite(
    name="FinishDeliveries",
    request=pb.FinishDeliveriesRequest,
    response=pb.FinishDeliveriesResponse,
    keys=lambda r: list({f.author_key: None for f in r.finished}),
    subset=_finished_of,
    apply=_finish_deliveries,
    sealed_ok=True,  # the record moves with its partition either way: forgetting it is always safe
    rpc=False,
    coalesced=True,
)

WRITES: tuple[ReplicatedWrite[Any, Any], ...] = (
    STORE_POST,
    REMOVE_POST,
    INSERT_INBOX,
    REMOVE_FROM_INBOXES,
    ADD_FOLLOWING,
    REMOVE_FOLLOWING,
    ADD_FOLLOWER,
    REMOVE_FOLLOWER,
    ADD_FOLLOWING_MANY,
    ADD_FOLLOWER_MANY,
    SET_RELATION,
    TOUCH_READER,
    REPORT_FOLLOWER_COUNT,
    SET_HOT_STATE,
    SET_HOT_FOLLOWING,
    FINISH_DELIVERIES,
)
BY_NAME: dict[str, ReplicatedWrite[Any, Any]] = {w.name: w for w in WRITES}
RPCS = tuple(w for w in WRITES if w.rpc)


def by_name(name: str) -> ReplicatedWrite[Any, Any] | None:
    """The write called `name` (a name from the wire or a hint: may be anything)."""
    return BY_NAME.get(name)
