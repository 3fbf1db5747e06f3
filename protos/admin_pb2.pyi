from protos import cluster_pb2 as _cluster_pb2
from protos import storage_pb2 as _storage_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RepairClusterRequest(_message.Message):
    __slots__ = ("node_id", "partition", "max_keys_per_second")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    MAX_KEYS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    partition: int
    max_keys_per_second: int
    def __init__(self, node_id: _Optional[str] = ..., partition: _Optional[int] = ..., max_keys_per_second: _Optional[int] = ...) -> None: ...

class RepairClusterProgress(_message.Message):
    __slots__ = ("partitions_total", "partitions_done", "out_of_sync", "keys_repaired", "unreachable", "done")
    PARTITIONS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_DONE_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_SYNC_FIELD_NUMBER: _ClassVar[int]
    KEYS_REPAIRED_FIELD_NUMBER: _ClassVar[int]
    UNREACHABLE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    partitions_total: int
    partitions_done: int
    out_of_sync: int
    keys_repaired: int
    unreachable: _containers.RepeatedScalarFieldContainer[str]
    done: bool
    def __init__(self, partitions_total: _Optional[int] = ..., partitions_done: _Optional[int] = ..., out_of_sync: _Optional[int] = ..., keys_repaired: _Optional[int] = ..., unreachable: _Optional[_Iterable[str]] = ..., done: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("id", "address", "healthy", "error", "partitions", "keys_by_family", "requests_served", "rss_bytes", "delivery", "replication", "disk_error", "leveldb_cache_bytes")
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
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    DISK_ERROR_FIELD_NUMBER: _ClassVar[int]
    LEVELDB_CACHE_BYTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    healthy: bool
    error: str
    partitions: int
    keys_by_family: _containers.ScalarMap[str, int]
    requests_served: int
    rss_bytes: int
    delivery: _storage_pb2.DeliveryStats
    replication: _storage_pb2.ReplicationStats
    disk_error: str
    leveldb_cache_bytes: int
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., healthy: _Optional[bool] = ..., error: _Optional[str] = ..., partitions: _Optional[int] = ..., keys_by_family: _Optional[_Mapping[str, int]] = ..., requests_served: _Optional[int] = ..., rss_bytes: _Optional[int] = ..., delivery: _Optional[_Union[_storage_pb2.DeliveryStats, _Mapping]] = ..., replication: _Optional[_Union[_storage_pb2.ReplicationStats, _Mapping]] = ..., disk_error: _Optional[str] = ..., leveldb_cache_bytes: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("cache_entries", "cache_capacity", "cache_hits", "cache_misses", "rss_bytes")
    CACHE_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CACHE_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    CACHE_MISSES_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    cache_entries: int
    cache_capacity: int
    cache_hits: int
    cache_misses: int
    rss_bytes: int
    def __init__(self, cache_entries: _Optional[int] = ..., cache_capacity: _Optional[int] = ..., cache_hits: _Optional[int] = ..., cache_misses: _Optional[int] = ..., rss_bytes: _Optional[int] = ...) -> None: ...

class ClusterStatus(_message.Message):
    __slots__ = ("epoch", "partitions", "replication_factor", "nodes", "hot_users", "hot_registry", "router", "change", "change_progress")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    HOT_USERS_FIELD_NUMBER: _ClassVar[int]
    HOT_REGISTRY_FIELD_NUMBER: _ClassVar[int]
    ROUTER_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    partitions: int
    replication_factor: int
    nodes: _containers.RepeatedCompositeFieldContainer[NodeHealth]
    hot_users: _containers.RepeatedScalarFieldContainer[str]
    hot_registry: _containers.RepeatedCompositeFieldContainer[HotUser]
    router: RouterStats
    change: str
    change_progress: ChangeProgress
    def __init__(self, epoch: _Optional[int] = ..., partitions: _Optional[int] = ..., replication_factor: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[NodeHealth, _Mapping]]] = ..., hot_users: _Optional[_Iterable[str]] = ..., hot_registry: _Optional[_Iterable[_Union[HotUser, _Mapping]]] = ..., router: _Optional[_Union[RouterStats, _Mapping]] = ..., change: _Optional[str] = ..., change_progress: _Optional[_Union[ChangeProgress, _Mapping]] = ...) -> None: ...

class ChangeMembershipRequest(_message.Message):
    __slots__ = ("kind", "node_id", "address", "dry_run", "max_keys_per_second", "dead", "feed_address", "force")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ChangeMembershipRequest.Kind]
        ADD: _ClassVar[ChangeMembershipRequest.Kind]
        REMOVE: _ClassVar[ChangeMembershipRequest.Kind]
        RESUME: _ClassVar[ChangeMembershipRequest.Kind]
        ABORT: _ClassVar[ChangeMembershipRequest.Kind]
    KIND_UNSPECIFIED: ChangeMembershipRequest.Kind
    ADD: ChangeMembershipRequest.Kind
    REMOVE: ChangeMembershipRequest.Kind
    RESUME: ChangeMembershipRequest.Kind
    ABORT: ChangeMembershipRequest.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    MAX_KEYS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    DEAD_FIELD_NUMBER: _ClassVar[int]
    FEED_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    kind: ChangeMembershipRequest.Kind
    node_id: str
    address: str
    dry_run: bool
    max_keys_per_second: int
    dead: bool
    feed_address: str
    force: bool
    def __init__(self, kind: _Optional[_Union[ChangeMembershipRequest.Kind, str]] = ..., node_id: _Optional[str] = ..., address: _Optional[str] = ..., dry_run: _Optional[bool] = ..., max_keys_per_second: _Optional[int] = ..., dead: _Optional[bool] = ..., feed_address: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class PlannedMove(_message.Message):
    __slots__ = ("source", "destination", "partitions")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    source: str
    destination: str
    partitions: int
    def __init__(self, source: _Optional[str] = ..., destination: _Optional[str] = ..., partitions: _Optional[int] = ...) -> None: ...

class ChangeProgress(_message.Message):
    __slots__ = ("phase", "change", "from_epoch", "to_epoch", "partitions_total", "partitions_moving", "moves", "keys_total", "keys_moved", "bytes_moved", "transfers_total", "transfers_caught_up", "message", "elapsed_s", "replication_factor", "copies_min", "copies_max")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    FROM_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TO_EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_MOVING_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    KEYS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    KEYS_MOVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_MOVED_FIELD_NUMBER: _ClassVar[int]
    TRANSFERS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    TRANSFERS_CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    COPIES_MIN_FIELD_NUMBER: _ClassVar[int]
    COPIES_MAX_FIELD_NUMBER: _ClassVar[int]
    phase: str
    change: str
    from_epoch: int
    to_epoch: int
    partitions_total: int
    partitions_moving: int
    moves: _containers.RepeatedCompositeFieldContainer[PlannedMove]
    keys_total: int
    keys_moved: int
    bytes_moved: int
    transfers_total: int
    transfers_caught_up: int
    message: str
    elapsed_s: float
    replication_factor: int
    copies_min: int
    copies_max: int
    def __init__(self, phase: _Optional[str] = ..., change: _Optional[str] = ..., from_epoch: _Optional[int] = ..., to_epoch: _Optional[int] = ..., partitions_total: _Optional[int] = ..., partitions_moving: _Optional[int] = ..., moves: _Optional[_Iterable[_Union[PlannedMove, _Mapping]]] = ..., keys_total: _Optional[int] = ..., keys_moved: _Optional[int] = ..., bytes_moved: _Optional[int] = ..., transfers_total: _Optional[int] = ..., transfers_caught_up: _Optional[int] = ..., message: _Optional[str] = ..., elapsed_s: _Optional[float] = ..., replication_factor: _Optional[int] = ..., copies_min: _Optional[int] = ..., copies_max: _Optional[int] = ...) -> None: ...
