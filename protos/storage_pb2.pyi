from protos import cluster_pb2 as _cluster_pb2
from protos import feed_pb2 as _feed_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HotState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NORMAL: _ClassVar[HotState]
    MIGRATING: _ClassVar[HotState]
    HOT: _ClassVar[HotState]
    COOLING: _ClassVar[HotState]
    COLD: _ClassVar[HotState]

class EdgeDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EDGE_DIRECTION_UNSPECIFIED: _ClassVar[EdgeDirection]
    FOLLOWERS: _ClassVar[EdgeDirection]
    FOLLOWING: _ClassVar[EdgeDirection]
    MUTED: _ClassVar[EdgeDirection]
    BLOCKED: _ClassVar[EdgeDirection]

class Relation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RELATION_UNSPECIFIED: _ClassVar[Relation]
    MUTES: _ClassVar[Relation]
    BLOCKS: _ClassVar[Relation]
    BLOCKED_BY: _ClassVar[Relation]
NORMAL: HotState
MIGRATING: HotState
HOT: HotState
COOLING: HotState
COLD: HotState
EDGE_DIRECTION_UNSPECIFIED: EdgeDirection
FOLLOWERS: EdgeDirection
FOLLOWING: EdgeDirection
MUTED: EdgeDirection
BLOCKED: EdgeDirection
RELATION_UNSPECIFIED: Relation
MUTES: Relation
BLOCKS: Relation
BLOCKED_BY: Relation

class StorePostRequest(_message.Message):
    __slots__ = ("epoch", "author_key", "post", "request_id", "replica")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_KEY_FIELD_NUMBER: _ClassVar[int]
    POST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    author_key: str
    post: _feed_pb2.Post
    request_id: str
    replica: bool
    def __init__(self, epoch: _Optional[int] = ..., author_key: _Optional[str] = ..., post: _Optional[_Union[_feed_pb2.Post, _Mapping]] = ..., request_id: _Optional[str] = ..., replica: _Optional[bool] = ...) -> None: ...

class StorePostResponse(_message.Message):
    __slots__ = ("created", "state", "existing_id")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXISTING_ID_FIELD_NUMBER: _ClassVar[int]
    created: bool
    state: HotState
    existing_id: int
    def __init__(self, created: _Optional[bool] = ..., state: _Optional[_Union[HotState, str]] = ..., existing_id: _Optional[int] = ...) -> None: ...

class RemovePostRequest(_message.Message):
    __slots__ = ("epoch", "author_key", "post_id", "version")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_KEY_FIELD_NUMBER: _ClassVar[int]
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    author_key: str
    post_id: int
    version: int
    def __init__(self, epoch: _Optional[int] = ..., author_key: _Optional[str] = ..., post_id: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class RemovePostResponse(_message.Message):
    __slots__ = ("post",)
    POST_FIELD_NUMBER: _ClassVar[int]
    post: _feed_pb2.Post
    def __init__(self, post: _Optional[_Union[_feed_pb2.Post, _Mapping]] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("kind", "post", "post_id", "author", "salted", "unless_hot", "after", "created_at_ms", "key", "version")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        INSERT: _ClassVar[Delivery.Kind]
        RETRACT: _ClassVar[Delivery.Kind]
        COUNT: _ClassVar[Delivery.Kind]
    INSERT: Delivery.Kind
    RETRACT: Delivery.Kind
    COUNT: Delivery.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    POST_FIELD_NUMBER: _ClassVar[int]
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    SALTED_FIELD_NUMBER: _ClassVar[int]
    UNLESS_HOT_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    kind: Delivery.Kind
    post: _feed_pb2.Post
    post_id: int
    author: str
    salted: bool
    unless_hot: bool
    after: str
    created_at_ms: int
    key: str
    version: int
    def __init__(self, kind: _Optional[_Union[Delivery.Kind, str]] = ..., post: _Optional[_Union[_feed_pb2.Post, _Mapping]] = ..., post_id: _Optional[int] = ..., author: _Optional[str] = ..., salted: _Optional[bool] = ..., unless_hot: _Optional[bool] = ..., after: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., key: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ReadPostsRequest(_message.Message):
    __slots__ = ("epoch", "author_key", "limit", "before_id", "more_keys")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_KEY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_ID_FIELD_NUMBER: _ClassVar[int]
    MORE_KEYS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    author_key: str
    limit: int
    before_id: int
    more_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, epoch: _Optional[int] = ..., author_key: _Optional[str] = ..., limit: _Optional[int] = ..., before_id: _Optional[int] = ..., more_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class ReadPostsResponse(_message.Message):
    __slots__ = ("posts",)
    POSTS_FIELD_NUMBER: _ClassVar[int]
    posts: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, posts: _Optional[_Iterable[bytes]] = ...) -> None: ...

class InsertInboxRequest(_message.Message):
    __slots__ = ("epoch", "posts", "consumers")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    POSTS_FIELD_NUMBER: _ClassVar[int]
    CONSUMERS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    posts: _containers.RepeatedCompositeFieldContainer[_feed_pb2.Post]
    consumers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, epoch: _Optional[int] = ..., posts: _Optional[_Iterable[_Union[_feed_pb2.Post, _Mapping]]] = ..., consumers: _Optional[_Iterable[str]] = ...) -> None: ...

class InsertInboxResponse(_message.Message):
    __slots__ = ("inserted",)
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    inserted: int
    def __init__(self, inserted: _Optional[int] = ...) -> None: ...

class RemoveFromInboxesRequest(_message.Message):
    __slots__ = ("epoch", "post_id", "consumers")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    CONSUMERS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    post_id: int
    consumers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, epoch: _Optional[int] = ..., post_id: _Optional[int] = ..., consumers: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveFromInboxesResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class ReadInboxRequest(_message.Message):
    __slots__ = ("epoch", "consumer", "limit", "before_id", "after_id")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    consumer: str
    limit: int
    before_id: int
    after_id: int
    def __init__(self, epoch: _Optional[int] = ..., consumer: _Optional[str] = ..., limit: _Optional[int] = ..., before_id: _Optional[int] = ..., after_id: _Optional[int] = ...) -> None: ...

class ReadInboxResponse(_message.Message):
    __slots__ = ("posts", "hot_followees", "own_posts_salted", "last_read_ms", "rebuilding")
    POSTS_FIELD_NUMBER: _ClassVar[int]
    HOT_FOLLOWEES_FIELD_NUMBER: _ClassVar[int]
    OWN_POSTS_SALTED_FIELD_NUMBER: _ClassVar[int]
    LAST_READ_MS_FIELD_NUMBER: _ClassVar[int]
    REBUILDING_FIELD_NUMBER: _ClassVar[int]
    posts: _containers.RepeatedScalarFieldContainer[bytes]
    hot_followees: _containers.RepeatedScalarFieldContainer[str]
    own_posts_salted: bool
    last_read_ms: int
    rebuilding: bool
    def __init__(self, posts: _Optional[_Iterable[bytes]] = ..., hot_followees: _Optional[_Iterable[str]] = ..., own_posts_salted: _Optional[bool] = ..., last_read_ms: _Optional[int] = ..., rebuilding: _Optional[bool] = ...) -> None: ...

class TouchReaderRequest(_message.Message):
    __slots__ = ("epoch", "user", "read_ms", "rebuilding")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    READ_MS_FIELD_NUMBER: _ClassVar[int]
    REBUILDING_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    user: str
    read_ms: int
    rebuilding: bool
    def __init__(self, epoch: _Optional[int] = ..., user: _Optional[str] = ..., read_ms: _Optional[int] = ..., rebuilding: _Optional[bool] = ...) -> None: ...

class TouchReaderResponse(_message.Message):
    __slots__ = ("changed",)
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    def __init__(self, changed: _Optional[bool] = ...) -> None: ...

class AddFollowingRequest(_message.Message):
    __slots__ = ("epoch", "follower", "followee", "hot", "followee_key", "version")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_FIELD_NUMBER: _ClassVar[int]
    HOT_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    follower: str
    followee: str
    hot: bool
    followee_key: str
    version: int
    def __init__(self, epoch: _Optional[int] = ..., follower: _Optional[str] = ..., followee: _Optional[str] = ..., hot: _Optional[bool] = ..., followee_key: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class RemoveFollowingRequest(_message.Message):
    __slots__ = ("epoch", "follower", "followee", "version")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    follower: str
    followee: str
    version: int
    def __init__(self, epoch: _Optional[int] = ..., follower: _Optional[str] = ..., followee: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class AddFollowerRequest(_message.Message):
    __slots__ = ("epoch", "followee_key", "follower", "backfill_limit", "author", "version")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_KEY_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_LIMIT_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    followee_key: str
    follower: str
    backfill_limit: int
    author: str
    version: int
    def __init__(self, epoch: _Optional[int] = ..., followee_key: _Optional[str] = ..., follower: _Optional[str] = ..., backfill_limit: _Optional[int] = ..., author: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class AddFollowerResponse(_message.Message):
    __slots__ = ("created", "recent_posts", "state", "refused", "deleted_ids")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    RECENT_POSTS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    DELETED_IDS_FIELD_NUMBER: _ClassVar[int]
    created: bool
    recent_posts: _containers.RepeatedCompositeFieldContainer[_feed_pb2.Post]
    state: HotState
    refused: Relation
    deleted_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, created: _Optional[bool] = ..., recent_posts: _Optional[_Iterable[_Union[_feed_pb2.Post, _Mapping]]] = ..., state: _Optional[_Union[HotState, str]] = ..., refused: _Optional[_Union[Relation, str]] = ..., deleted_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class RemoveFollowerRequest(_message.Message):
    __slots__ = ("epoch", "followee_key", "follower", "version")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_KEY_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    followee_key: str
    follower: str
    version: int
    def __init__(self, epoch: _Optional[int] = ..., followee_key: _Optional[str] = ..., follower: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class EdgeResponse(_message.Message):
    __slots__ = ("changed", "state", "followee_key", "refused")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_KEY_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    state: HotState
    followee_key: str
    refused: Relation
    def __init__(self, changed: _Optional[bool] = ..., state: _Optional[_Union[HotState, str]] = ..., followee_key: _Optional[str] = ..., refused: _Optional[_Union[Relation, str]] = ...) -> None: ...

class Edge(_message.Message):
    __slots__ = ("follower", "followee", "hot", "followee_key")
    FOLLOWER_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_FIELD_NUMBER: _ClassVar[int]
    HOT_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_KEY_FIELD_NUMBER: _ClassVar[int]
    follower: str
    followee: str
    hot: bool
    followee_key: str
    def __init__(self, follower: _Optional[str] = ..., followee: _Optional[str] = ..., hot: _Optional[bool] = ..., followee_key: _Optional[str] = ...) -> None: ...

class EdgeBatch(_message.Message):
    __slots__ = ("epoch", "edges", "version")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    edges: _containers.RepeatedCompositeFieldContainer[Edge]
    version: int
    def __init__(self, epoch: _Optional[int] = ..., edges: _Optional[_Iterable[_Union[Edge, _Mapping]]] = ..., version: _Optional[int] = ...) -> None: ...

class UserState(_message.Message):
    __slots__ = ("user", "state", "created")
    USER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    user: str
    state: HotState
    created: int
    def __init__(self, user: _Optional[str] = ..., state: _Optional[_Union[HotState, str]] = ..., created: _Optional[int] = ...) -> None: ...

class EdgeBatchResponse(_message.Message):
    __slots__ = ("created", "states", "existing")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    EXISTING_FIELD_NUMBER: _ClassVar[int]
    created: int
    states: _containers.RepeatedCompositeFieldContainer[UserState]
    existing: _containers.RepeatedCompositeFieldContainer[Edge]
    def __init__(self, created: _Optional[int] = ..., states: _Optional[_Iterable[_Union[UserState, _Mapping]]] = ..., existing: _Optional[_Iterable[_Union[Edge, _Mapping]]] = ...) -> None: ...

class SetRelationRequest(_message.Message):
    __slots__ = ("epoch", "user", "target", "relation", "on", "version")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RELATION_FIELD_NUMBER: _ClassVar[int]
    ON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    user: str
    target: str
    relation: Relation
    on: bool
    version: int
    def __init__(self, epoch: _Optional[int] = ..., user: _Optional[str] = ..., target: _Optional[str] = ..., relation: _Optional[_Union[Relation, str]] = ..., on: _Optional[bool] = ..., version: _Optional[int] = ...) -> None: ...

class SetRelationResponse(_message.Message):
    __slots__ = ("changed",)
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    def __init__(self, changed: _Optional[bool] = ...) -> None: ...

class ListEdgesRequest(_message.Message):
    __slots__ = ("epoch", "direction", "user_key", "after", "limit", "more_keys")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    USER_KEY_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MORE_KEYS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    direction: EdgeDirection
    user_key: str
    after: str
    limit: int
    more_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, epoch: _Optional[int] = ..., direction: _Optional[_Union[EdgeDirection, str]] = ..., user_key: _Optional[str] = ..., after: _Optional[str] = ..., limit: _Optional[int] = ..., more_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class ListEdgesResponse(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, users: _Optional[_Iterable[str]] = ...) -> None: ...

class GetUserMetaRequest(_message.Message):
    __slots__ = ("epoch", "user_key", "post_keys")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    USER_KEY_FIELD_NUMBER: _ClassVar[int]
    POST_KEYS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    user_key: str
    post_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, epoch: _Optional[int] = ..., user_key: _Optional[str] = ..., post_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class UserMeta(_message.Message):
    __slots__ = ("found", "follower_count", "following_count", "post_count", "state")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_COUNT_FIELD_NUMBER: _ClassVar[int]
    FOLLOWING_COUNT_FIELD_NUMBER: _ClassVar[int]
    POST_COUNT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    found: bool
    follower_count: int
    following_count: int
    post_count: int
    state: HotState
    def __init__(self, found: _Optional[bool] = ..., follower_count: _Optional[int] = ..., following_count: _Optional[int] = ..., post_count: _Optional[int] = ..., state: _Optional[_Union[HotState, str]] = ...) -> None: ...

class FollowerCountReport(_message.Message):
    __slots__ = ("epoch", "user", "key", "count", "version")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    user: str
    key: str
    count: int
    version: int
    def __init__(self, epoch: _Optional[int] = ..., user: _Optional[str] = ..., key: _Optional[str] = ..., count: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class SetHotStateRequest(_message.Message):
    __slots__ = ("epoch", "user", "state", "expect", "pin", "version")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPECT_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    user: str
    state: HotState
    expect: _containers.RepeatedScalarFieldContainer[HotState]
    pin: bool
    version: int
    def __init__(self, epoch: _Optional[int] = ..., user: _Optional[str] = ..., state: _Optional[_Union[HotState, str]] = ..., expect: _Optional[_Iterable[_Union[HotState, str]]] = ..., pin: _Optional[bool] = ..., version: _Optional[int] = ...) -> None: ...

class HotStateResponse(_message.Message):
    __slots__ = ("state", "changed")
    STATE_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    state: HotState
    changed: bool
    def __init__(self, state: _Optional[_Union[HotState, str]] = ..., changed: _Optional[bool] = ...) -> None: ...

class ListHotUsersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HotUserEntry(_message.Message):
    __slots__ = ("user", "state", "pinned", "follower_count", "version")
    USER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_COUNT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    user: str
    state: HotState
    pinned: bool
    follower_count: int
    version: int
    def __init__(self, user: _Optional[str] = ..., state: _Optional[_Union[HotState, str]] = ..., pinned: _Optional[bool] = ..., follower_count: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class ListHotUsersResponse(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[HotUserEntry]
    def __init__(self, users: _Optional[_Iterable[_Union[HotUserEntry, _Mapping]]] = ...) -> None: ...

class SetHotFollowingRequest(_message.Message):
    __slots__ = ("epoch", "followee", "consumers", "hot", "posts", "version")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_FIELD_NUMBER: _ClassVar[int]
    CONSUMERS_FIELD_NUMBER: _ClassVar[int]
    HOT_FIELD_NUMBER: _ClassVar[int]
    POSTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    followee: str
    consumers: _containers.RepeatedScalarFieldContainer[str]
    hot: bool
    posts: _containers.RepeatedCompositeFieldContainer[_feed_pb2.Post]
    version: int
    def __init__(self, epoch: _Optional[int] = ..., followee: _Optional[str] = ..., consumers: _Optional[_Iterable[str]] = ..., hot: _Optional[bool] = ..., posts: _Optional[_Iterable[_Union[_feed_pb2.Post, _Mapping]]] = ..., version: _Optional[int] = ...) -> None: ...

class SetHotFollowingResponse(_message.Message):
    __slots__ = ("changed",)
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    changed: int
    def __init__(self, changed: _Optional[int] = ...) -> None: ...

class GetClusterMapRequest(_message.Message):
    __slots__ = ("known_epoch",)
    KNOWN_EPOCH_FIELD_NUMBER: _ClassVar[int]
    known_epoch: int
    def __init__(self, known_epoch: _Optional[int] = ...) -> None: ...

class GetNodeStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("node_id", "epoch", "partitions_owned", "keys_by_family", "requests_served", "rss_bytes", "delivery", "replication", "disk_error", "leveldb_cache_bytes")
    class KeysByFamilyEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_OWNED_FIELD_NUMBER: _ClassVar[int]
    KEYS_BY_FAMILY_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_SERVED_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    DISK_ERROR_FIELD_NUMBER: _ClassVar[int]
    LEVELDB_CACHE_BYTES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    epoch: int
    partitions_owned: int
    keys_by_family: _containers.ScalarMap[str, int]
    requests_served: int
    rss_bytes: int
    delivery: DeliveryStats
    replication: ReplicationStats
    disk_error: str
    leveldb_cache_bytes: int
    def __init__(self, node_id: _Optional[str] = ..., epoch: _Optional[int] = ..., partitions_owned: _Optional[int] = ..., keys_by_family: _Optional[_Mapping[str, int]] = ..., requests_served: _Optional[int] = ..., rss_bytes: _Optional[int] = ..., delivery: _Optional[_Union[DeliveryStats, _Mapping]] = ..., replication: _Optional[_Union[ReplicationStats, _Mapping]] = ..., disk_error: _Optional[str] = ..., leveldb_cache_bytes: _Optional[int] = ...) -> None: ...

class ReplicationStats(_message.Message):
    __slots__ = ("hints", "hints_by_target", "partitions_checked", "partitions_out_of_sync", "last_repair_ms", "keys_repaired", "repairing", "hints_replayed", "quorum_failures", "peers_down", "catching_up", "hints_expired", "clock_offset_ms", "max_clock_skew_ms", "writes_restamped", "tombstones_collected", "forwards_in_flight", "in_flight_hints_by_target")
    class HintsByTargetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ClockOffsetMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class InFlightHintsByTargetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    HINTS_FIELD_NUMBER: _ClassVar[int]
    HINTS_BY_TARGET_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_OUT_OF_SYNC_FIELD_NUMBER: _ClassVar[int]
    LAST_REPAIR_MS_FIELD_NUMBER: _ClassVar[int]
    KEYS_REPAIRED_FIELD_NUMBER: _ClassVar[int]
    REPAIRING_FIELD_NUMBER: _ClassVar[int]
    HINTS_REPLAYED_FIELD_NUMBER: _ClassVar[int]
    QUORUM_FAILURES_FIELD_NUMBER: _ClassVar[int]
    PEERS_DOWN_FIELD_NUMBER: _ClassVar[int]
    CATCHING_UP_FIELD_NUMBER: _ClassVar[int]
    HINTS_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    CLOCK_OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_CLOCK_SKEW_MS_FIELD_NUMBER: _ClassVar[int]
    WRITES_RESTAMPED_FIELD_NUMBER: _ClassVar[int]
    TOMBSTONES_COLLECTED_FIELD_NUMBER: _ClassVar[int]
    FORWARDS_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_HINTS_BY_TARGET_FIELD_NUMBER: _ClassVar[int]
    hints: int
    hints_by_target: _containers.ScalarMap[str, int]
    partitions_checked: int
    partitions_out_of_sync: int
    last_repair_ms: int
    keys_repaired: int
    repairing: bool
    hints_replayed: int
    quorum_failures: int
    peers_down: _containers.RepeatedScalarFieldContainer[str]
    catching_up: bool
    hints_expired: int
    clock_offset_ms: _containers.ScalarMap[str, int]
    max_clock_skew_ms: int
    writes_restamped: int
    tombstones_collected: int
    forwards_in_flight: int
    in_flight_hints_by_target: _containers.ScalarMap[str, int]
    def __init__(self, hints: _Optional[int] = ..., hints_by_target: _Optional[_Mapping[str, int]] = ..., partitions_checked: _Optional[int] = ..., partitions_out_of_sync: _Optional[int] = ..., last_repair_ms: _Optional[int] = ..., keys_repaired: _Optional[int] = ..., repairing: _Optional[bool] = ..., hints_replayed: _Optional[int] = ..., quorum_failures: _Optional[int] = ..., peers_down: _Optional[_Iterable[str]] = ..., catching_up: _Optional[bool] = ..., hints_expired: _Optional[int] = ..., clock_offset_ms: _Optional[_Mapping[str, int]] = ..., max_clock_skew_ms: _Optional[int] = ..., writes_restamped: _Optional[int] = ..., tombstones_collected: _Optional[int] = ..., forwards_in_flight: _Optional[int] = ..., in_flight_hints_by_target: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ReplicaWrite(_message.Message):
    __slots__ = ("method", "request")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    method: str
    request: bytes
    def __init__(self, method: _Optional[str] = ..., request: _Optional[bytes] = ...) -> None: ...

class ApplyWritesRequest(_message.Message):
    __slots__ = ("epoch", "writes", "hinted")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    WRITES_FIELD_NUMBER: _ClassVar[int]
    HINTED_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    writes: _containers.RepeatedCompositeFieldContainer[ReplicaWrite]
    hinted: bool
    def __init__(self, epoch: _Optional[int] = ..., writes: _Optional[_Iterable[_Union[ReplicaWrite, _Mapping]]] = ..., hinted: _Optional[bool] = ...) -> None: ...

class WriteResult(_message.Message):
    __slots__ = ("code", "message", "epoch", "response", "superseded_by")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_BY_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    epoch: int
    response: bytes
    superseded_by: int
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., epoch: _Optional[int] = ..., response: _Optional[bytes] = ..., superseded_by: _Optional[int] = ...) -> None: ...

class ApplyWritesResponse(_message.Message):
    __slots__ = ("results", "wall_ms")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    WALL_MS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[WriteResult]
    wall_ms: int
    def __init__(self, results: _Optional[_Iterable[_Union[WriteResult, _Mapping]]] = ..., wall_ms: _Optional[int] = ...) -> None: ...

class FinishedDelivery(_message.Message):
    __slots__ = ("author_key", "post_id", "kind", "up_to_version")
    AUTHOR_KEY_FIELD_NUMBER: _ClassVar[int]
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    UP_TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    author_key: str
    post_id: int
    kind: int
    up_to_version: int
    def __init__(self, author_key: _Optional[str] = ..., post_id: _Optional[int] = ..., kind: _Optional[int] = ..., up_to_version: _Optional[int] = ...) -> None: ...

class FinishDeliveriesRequest(_message.Message):
    __slots__ = ("epoch", "finished")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    finished: _containers.RepeatedCompositeFieldContainer[FinishedDelivery]
    def __init__(self, epoch: _Optional[int] = ..., finished: _Optional[_Iterable[_Union[FinishedDelivery, _Mapping]]] = ...) -> None: ...

class FinishDeliveriesResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class HeldDeliveriesRequest(_message.Message):
    __slots__ = ("epoch", "keys")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, epoch: _Optional[int] = ..., keys: _Optional[_Iterable[bytes]] = ...) -> None: ...

class HeldDeliveriesResponse(_message.Message):
    __slots__ = ("held",)
    HELD_FIELD_NUMBER: _ClassVar[int]
    held: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, held: _Optional[_Iterable[bool]] = ...) -> None: ...

class GetDigestsRequest(_message.Message):
    __slots__ = ("epoch", "partitions", "in_sync_since_ms")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    IN_SYNC_SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    partitions: _containers.RepeatedScalarFieldContainer[int]
    in_sync_since_ms: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, epoch: _Optional[int] = ..., partitions: _Optional[_Iterable[int]] = ..., in_sync_since_ms: _Optional[_Iterable[int]] = ...) -> None: ...

class PartitionDigest(_message.Message):
    __slots__ = ("partition", "buckets")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    partition: int
    buckets: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, partition: _Optional[int] = ..., buckets: _Optional[_Iterable[int]] = ...) -> None: ...

class GetDigestsResponse(_message.Message):
    __slots__ = ("digests",)
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    digests: _containers.RepeatedCompositeFieldContainer[PartitionDigest]
    def __init__(self, digests: _Optional[_Iterable[_Union[PartitionDigest, _Mapping]]] = ...) -> None: ...

class ReadBucketsRequest(_message.Message):
    __slots__ = ("epoch", "partition", "buckets")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    partition: int
    buckets: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, epoch: _Optional[int] = ..., partition: _Optional[int] = ..., buckets: _Optional[_Iterable[int]] = ...) -> None: ...

class ReadBucketsResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[KeyValue]
    def __init__(self, entries: _Optional[_Iterable[_Union[KeyValue, _Mapping]]] = ...) -> None: ...

class MergeEntriesRequest(_message.Message):
    __slots__ = ("epoch", "partition", "entries")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    partition: int
    entries: _containers.RepeatedCompositeFieldContainer[KeyValue]
    def __init__(self, epoch: _Optional[int] = ..., partition: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[KeyValue, _Mapping]]] = ...) -> None: ...

class MergeEntriesResponse(_message.Message):
    __slots__ = ("changed",)
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    changed: int
    def __init__(self, changed: _Optional[int] = ...) -> None: ...

class RepairRequest(_message.Message):
    __slots__ = ("partitions", "max_keys_per_second", "catch_up")
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_KEYS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedScalarFieldContainer[int]
    max_keys_per_second: int
    catch_up: bool
    def __init__(self, partitions: _Optional[_Iterable[int]] = ..., max_keys_per_second: _Optional[int] = ..., catch_up: _Optional[bool] = ...) -> None: ...

class RepairProgress(_message.Message):
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

class DeliveryStats(_message.Message):
    __slots__ = ("records", "oldest_age_s", "inbox_writes", "inbox_writes_per_s", "retries", "lag_p50_ms", "lag_p99_ms", "lag_samples", "fanout_busy_s", "fanout_paused_s", "lag_bucket_le_ms", "lag_bucket_counts", "inactive_readers", "inbox_entries_skipped")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    OLDEST_AGE_S_FIELD_NUMBER: _ClassVar[int]
    INBOX_WRITES_FIELD_NUMBER: _ClassVar[int]
    INBOX_WRITES_PER_S_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    LAG_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LAG_P99_MS_FIELD_NUMBER: _ClassVar[int]
    LAG_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    FANOUT_BUSY_S_FIELD_NUMBER: _ClassVar[int]
    FANOUT_PAUSED_S_FIELD_NUMBER: _ClassVar[int]
    LAG_BUCKET_LE_MS_FIELD_NUMBER: _ClassVar[int]
    LAG_BUCKET_COUNTS_FIELD_NUMBER: _ClassVar[int]
    INACTIVE_READERS_FIELD_NUMBER: _ClassVar[int]
    INBOX_ENTRIES_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    records: int
    oldest_age_s: float
    inbox_writes: int
    inbox_writes_per_s: float
    retries: int
    lag_p50_ms: float
    lag_p99_ms: float
    lag_samples: int
    fanout_busy_s: float
    fanout_paused_s: float
    lag_bucket_le_ms: _containers.RepeatedScalarFieldContainer[float]
    lag_bucket_counts: _containers.RepeatedScalarFieldContainer[int]
    inactive_readers: int
    inbox_entries_skipped: int
    def __init__(self, records: _Optional[int] = ..., oldest_age_s: _Optional[float] = ..., inbox_writes: _Optional[int] = ..., inbox_writes_per_s: _Optional[float] = ..., retries: _Optional[int] = ..., lag_p50_ms: _Optional[float] = ..., lag_p99_ms: _Optional[float] = ..., lag_samples: _Optional[int] = ..., fanout_busy_s: _Optional[float] = ..., fanout_paused_s: _Optional[float] = ..., lag_bucket_le_ms: _Optional[_Iterable[float]] = ..., lag_bucket_counts: _Optional[_Iterable[int]] = ..., inactive_readers: _Optional[int] = ..., inbox_entries_skipped: _Optional[int] = ...) -> None: ...

class SetClusterMapResponse(_message.Message):
    __slots__ = ("epoch", "adopted")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ADOPTED_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    adopted: bool
    def __init__(self, epoch: _Optional[int] = ..., adopted: _Optional[bool] = ...) -> None: ...

class KeyValue(_message.Message):
    __slots__ = ("key", "value", "deleted")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    deleted: bool
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., deleted: _Optional[bool] = ...) -> None: ...

class PartitionChunk(_message.Message):
    __slots__ = ("entries", "total_keys", "snapshot_done", "end")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_KEYS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_DONE_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[KeyValue]
    total_keys: int
    snapshot_done: bool
    end: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[KeyValue, _Mapping]]] = ..., total_keys: _Optional[int] = ..., snapshot_done: _Optional[bool] = ..., end: _Optional[bool] = ...) -> None: ...

class StreamPartitionsRequest(_message.Message):
    __slots__ = ("epoch", "partitions", "max_keys_per_second", "destination")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_KEYS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    partitions: _containers.RepeatedScalarFieldContainer[int]
    max_keys_per_second: int
    destination: str
    def __init__(self, epoch: _Optional[int] = ..., partitions: _Optional[_Iterable[int]] = ..., max_keys_per_second: _Optional[int] = ..., destination: _Optional[str] = ...) -> None: ...

class PullPartitionsRequest(_message.Message):
    __slots__ = ("epoch", "source_id", "source_address", "partitions", "max_keys_per_second")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_KEYS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    source_id: str
    source_address: str
    partitions: _containers.RepeatedScalarFieldContainer[int]
    max_keys_per_second: int
    def __init__(self, epoch: _Optional[int] = ..., source_id: _Optional[str] = ..., source_address: _Optional[str] = ..., partitions: _Optional[_Iterable[int]] = ..., max_keys_per_second: _Optional[int] = ...) -> None: ...

class PullProgress(_message.Message):
    __slots__ = ("total_keys", "keys", "bytes", "snapshot_done", "done")
    TOTAL_KEYS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_DONE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    total_keys: int
    keys: int
    bytes: int
    snapshot_done: bool
    done: bool
    def __init__(self, total_keys: _Optional[int] = ..., keys: _Optional[int] = ..., bytes: _Optional[int] = ..., snapshot_done: _Optional[bool] = ..., done: _Optional[bool] = ...) -> None: ...

class SealPartitionsRequest(_message.Message):
    __slots__ = ("epoch", "partitions", "unseal")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    UNSEAL_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    partitions: _containers.RepeatedScalarFieldContainer[int]
    unseal: bool
    def __init__(self, epoch: _Optional[int] = ..., partitions: _Optional[_Iterable[int]] = ..., unseal: _Optional[bool] = ...) -> None: ...

class SealPartitionsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DropPartitionsRequest(_message.Message):
    __slots__ = ("epoch", "partitions")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    partitions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, epoch: _Optional[int] = ..., partitions: _Optional[_Iterable[int]] = ...) -> None: ...

class DropPartitionsResponse(_message.Message):
    __slots__ = ("keys_deleted",)
    KEYS_DELETED_FIELD_NUMBER: _ClassVar[int]
    keys_deleted: int
    def __init__(self, keys_deleted: _Optional[int] = ...) -> None: ...

class EncodedPostPage(_message.Message):
    __slots__ = ("posts", "next_page_token", "gap")
    POSTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    posts: _containers.RepeatedScalarFieldContainer[bytes]
    next_page_token: str
    gap: bool
    def __init__(self, posts: _Optional[_Iterable[bytes]] = ..., next_page_token: _Optional[str] = ..., gap: _Optional[bool] = ...) -> None: ...
