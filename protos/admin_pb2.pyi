from protos import cluster_pb2 as _cluster_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetClusterStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FollowEdge(_message.Message):
    __slots__ = ("follower", "followee")
    FOLLOWER_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_FIELD_NUMBER: _ClassVar[int]
    follower: str
    followee: str
    def __init__(self, follower: _Optional[str] = ..., followee: _Optional[str] = ...) -> None: ...

class BulkFollowRequest(_message.Message):
    __slots__ = ("edges",)
    EDGES_FIELD_NUMBER: _ClassVar[int]
    edges: _containers.RepeatedCompositeFieldContainer[FollowEdge]
    def __init__(self, edges: _Optional[_Iterable[_Union[FollowEdge, _Mapping]]] = ...) -> None: ...

class BulkFollowResponse(_message.Message):
    __slots__ = ("created",)
    CREATED_FIELD_NUMBER: _ClassVar[int]
    created: int
    def __init__(self, created: _Optional[int] = ...) -> None: ...

class GetRouterMapRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeHealth(_message.Message):
    __slots__ = ("id", "address", "healthy", "error", "partitions", "keys_by_family", "requests_served", "rss_bytes")
    class KeysByFamilyEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    KEYS_BY_FAMILY_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_SERVED_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    healthy: bool
    error: str
    partitions: int
    keys_by_family: _containers.ScalarMap[str, int]
    requests_served: int
    rss_bytes: int
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., healthy: _Optional[bool] = ..., error: _Optional[str] = ..., partitions: _Optional[int] = ..., keys_by_family: _Optional[_Mapping[str, int]] = ..., requests_served: _Optional[int] = ..., rss_bytes: _Optional[int] = ...) -> None: ...

class HotUser(_message.Message):
    __slots__ = ("user", "state", "pinned", "follower_count")
    USER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_COUNT_FIELD_NUMBER: _ClassVar[int]
    user: str
    state: str
    pinned: bool
    follower_count: int
    def __init__(self, user: _Optional[str] = ..., state: _Optional[str] = ..., pinned: _Optional[bool] = ..., follower_count: _Optional[int] = ...) -> None: ...

class RouterStats(_message.Message):
    __slots__ = ("cache_entries", "cache_capacity", "cache_hits", "cache_misses", "fanout_pending", "inbox_writes", "fanout_failed_batches", "rss_bytes")
    CACHE_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CACHE_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    CACHE_MISSES_FIELD_NUMBER: _ClassVar[int]
    FANOUT_PENDING_FIELD_NUMBER: _ClassVar[int]
    INBOX_WRITES_FIELD_NUMBER: _ClassVar[int]
    FANOUT_FAILED_BATCHES_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    cache_entries: int
    cache_capacity: int
    cache_hits: int
    cache_misses: int
    fanout_pending: int
    inbox_writes: int
    fanout_failed_batches: int
    rss_bytes: int
    def __init__(self, cache_entries: _Optional[int] = ..., cache_capacity: _Optional[int] = ..., cache_hits: _Optional[int] = ..., cache_misses: _Optional[int] = ..., fanout_pending: _Optional[int] = ..., inbox_writes: _Optional[int] = ..., fanout_failed_batches: _Optional[int] = ..., rss_bytes: _Optional[int] = ...) -> None: ...

class ClusterStatus(_message.Message):
    __slots__ = ("epoch", "partitions", "replication_factor", "nodes", "hot_users", "hot_registry", "router")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    HOT_USERS_FIELD_NUMBER: _ClassVar[int]
    HOT_REGISTRY_FIELD_NUMBER: _ClassVar[int]
    ROUTER_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    partitions: int
    replication_factor: int
    nodes: _containers.RepeatedCompositeFieldContainer[NodeHealth]
    hot_users: _containers.RepeatedScalarFieldContainer[str]
    hot_registry: _containers.RepeatedCompositeFieldContainer[HotUser]
    router: RouterStats
    def __init__(self, epoch: _Optional[int] = ..., partitions: _Optional[int] = ..., replication_factor: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[NodeHealth, _Mapping]]] = ..., hot_users: _Optional[_Iterable[str]] = ..., hot_registry: _Optional[_Iterable[_Union[HotUser, _Mapping]]] = ..., router: _Optional[_Union[RouterStats, _Mapping]] = ...) -> None: ...
