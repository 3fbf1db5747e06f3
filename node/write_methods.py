"""The Storage methods that write, described once for replication (node/replication.py).

For each: its request and response types, the user keys whose partitions it writes (so the
coordinating node knows which replicas must have it), how to cut a many-key request down to the
keys one replica holds, and whether it carries a version the coordinator stamps (last writer wins,
node/versioned.py). Hints keep a write as its method name and encoded request, and replay it
through this table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from protos import storage_pb2 as pb

__all__ = ["WriteMethod", "WRITES", "WRITE", "by_name"]


@dataclass(frozen=True)
class WriteMethod:
    name: str
    request: type[Message]
    response: type[Message]
    keys: Callable[[Any], list[str]]
    # Many-key writes: the request limited to some of its keys (None: the write has one key).
    subset: Callable[[Any, set[str]], Message] | None = None
    versioned: bool = False
    # Fan-out inbox writes: applied as background work (node/reads_first.py), so a replica may take
    # longer than a user's write to answer; liveness comes from the failure detector, not this wait.
    background: bool = False

    def parse(self, raw: bytes) -> Message:
        return self.request.FromString(raw)

    def limited(self, request: Message, keys: Iterable[str]) -> Message:
        if self.subset is None:
            return request
        return self.subset(request, set(keys))


def _consumers(request: Any, keep: set[str]) -> Message:
    out = type(request)()
    out.CopyFrom(request)
    del out.consumers[:]
    out.consumers.extend(c for c in request.consumers if c in keep)
    return out


def _edges_by(field: str) -> Callable[[Any, set[str]], Message]:
    def subset(request: Any, keep: set[str]) -> Message:
        out = pb.EdgeBatch(epoch=request.epoch, version=request.version)
        out.edges.extend(e for e in request.edges if getattr(e, field) in keep)
        return out

    return subset


WRITES = [
    WriteMethod("StorePost", pb.StorePostRequest, pb.StorePostResponse, lambda r: [r.author_key]),
    WriteMethod("RemovePost", pb.RemovePostRequest, pb.RemovePostResponse, lambda r: [r.author_key]),
    WriteMethod(
        "InsertInbox",
        pb.InsertInboxRequest,
        pb.InsertInboxResponse,
        lambda r: list(r.consumers),
        _consumers,
        background=True,
    ),
    WriteMethod(
        "RemoveFromInboxes",
        pb.RemoveFromInboxesRequest,
        pb.RemoveFromInboxesResponse,
        lambda r: list(r.consumers),
        _consumers,
        background=True,
    ),
    WriteMethod("AddFollowing", pb.AddFollowingRequest, pb.EdgeResponse, lambda r: [r.follower], versioned=True),
    WriteMethod("RemoveFollowing", pb.RemoveFollowingRequest, pb.EdgeResponse, lambda r: [r.follower], versioned=True),
    WriteMethod(
        "AddFollower", pb.AddFollowerRequest, pb.AddFollowerResponse, lambda r: [r.followee_key], versioned=True
    ),
    WriteMethod(
        "RemoveFollower", pb.RemoveFollowerRequest, pb.EdgeResponse, lambda r: [r.followee_key], versioned=True
    ),
    WriteMethod(
        "AddFollowingMany",
        pb.EdgeBatch,
        pb.EdgeBatchResponse,
        lambda r: list({e.follower for e in r.edges}),
        _edges_by("follower"),
        versioned=True,
    ),
    WriteMethod(
        "AddFollowerMany",
        pb.EdgeBatch,
        pb.EdgeBatchResponse,
        lambda r: list({e.followee for e in r.edges}),
        _edges_by("followee"),
        versioned=True,
    ),
    WriteMethod("ReportFollowerCount", pb.FollowerCountReport, pb.HotStateResponse, lambda r: [r.user]),
    WriteMethod("SetHotState", pb.SetHotStateRequest, pb.HotStateResponse, lambda r: [r.user], versioned=True),
    WriteMethod(
        "SetHotFollowing",
        pb.SetHotFollowingRequest,
        pb.SetHotFollowingResponse,
        lambda r: list(r.consumers),
        _consumers,
        versioned=True,
    ),
    # Not a Storage RPC of its own: the node driving a delivery tells the other replicas it is done.
    WriteMethod(
        "FinishDeliveries",
        pb.FinishDeliveriesRequest,
        pb.FinishDeliveriesResponse,
        lambda r: list({f.author_key for f in r.finished}),
    ),
]

WRITE = {m.name: m for m in WRITES}


def by_name(name: str) -> WriteMethod | None:
    """The write method called `name` (a name from the wire: may be anything)."""
    return WRITE.get(name)
