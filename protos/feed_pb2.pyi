from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Post(_message.Message):
    __slots__ = ("id", "author", "text", "created_at_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    id: int
    author: str
    text: str
    created_at_ms: int
    def __init__(self, id: _Optional[int] = ..., author: _Optional[str] = ..., text: _Optional[str] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class User(_message.Message):
    __slots__ = ("user", "follower_count", "following_count", "post_count", "hot")
    USER_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_COUNT_FIELD_NUMBER: _ClassVar[int]
    FOLLOWING_COUNT_FIELD_NUMBER: _ClassVar[int]
    POST_COUNT_FIELD_NUMBER: _ClassVar[int]
    HOT_FIELD_NUMBER: _ClassVar[int]
    user: str
    follower_count: int
    following_count: int
    post_count: int
    hot: bool
    def __init__(self, user: _Optional[str] = ..., follower_count: _Optional[int] = ..., following_count: _Optional[int] = ..., post_count: _Optional[int] = ..., hot: _Optional[bool] = ...) -> None: ...

class FollowRequest(_message.Message):
    __slots__ = ("follower", "followee")
    FOLLOWER_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_FIELD_NUMBER: _ClassVar[int]
    follower: str
    followee: str
    def __init__(self, follower: _Optional[str] = ..., followee: _Optional[str] = ...) -> None: ...

class FollowResponse(_message.Message):
    __slots__ = ("created",)
    CREATED_FIELD_NUMBER: _ClassVar[int]
    created: bool
    def __init__(self, created: _Optional[bool] = ...) -> None: ...

class UnfollowRequest(_message.Message):
    __slots__ = ("follower", "followee")
    FOLLOWER_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_FIELD_NUMBER: _ClassVar[int]
    follower: str
    followee: str
    def __init__(self, follower: _Optional[str] = ..., followee: _Optional[str] = ...) -> None: ...

class UnfollowResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: bool
    def __init__(self, removed: _Optional[bool] = ...) -> None: ...

class PostRequest(_message.Message):
    __slots__ = ("author", "text", "request_id")
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    author: str
    text: str
    request_id: str
    def __init__(self, author: _Optional[str] = ..., text: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeletePostRequest(_message.Message):
    __slots__ = ("author", "post_id")
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    author: str
    post_id: int
    def __init__(self, author: _Optional[str] = ..., post_id: _Optional[int] = ...) -> None: ...

class DeletePostResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTimelineRequest(_message.Message):
    __slots__ = ("user", "page_size", "page_token", "newer_than_id")
    USER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NEWER_THAN_ID_FIELD_NUMBER: _ClassVar[int]
    user: str
    page_size: int
    page_token: str
    newer_than_id: int
    def __init__(self, user: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., newer_than_id: _Optional[int] = ...) -> None: ...

class WatchTimelineRequest(_message.Message):
    __slots__ = ("user", "after_id", "order_hold_ms")
    USER_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_HOLD_MS_FIELD_NUMBER: _ClassVar[int]
    user: str
    after_id: int
    order_hold_ms: int
    def __init__(self, user: _Optional[str] = ..., after_id: _Optional[int] = ..., order_hold_ms: _Optional[int] = ...) -> None: ...

class TimelineEvent(_message.Message):
    __slots__ = ("post", "deleted_id")
    POST_FIELD_NUMBER: _ClassVar[int]
    DELETED_ID_FIELD_NUMBER: _ClassVar[int]
    post: Post
    deleted_id: int
    def __init__(self, post: _Optional[_Union[Post, _Mapping]] = ..., deleted_id: _Optional[int] = ...) -> None: ...

class GetUserPostsRequest(_message.Message):
    __slots__ = ("author", "page_size", "page_token")
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    author: str
    page_size: int
    page_token: str
    def __init__(self, author: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class PostPage(_message.Message):
    __slots__ = ("posts", "next_page_token", "gap")
    POSTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    posts: _containers.RepeatedCompositeFieldContainer[Post]
    next_page_token: str
    gap: bool
    def __init__(self, posts: _Optional[_Iterable[_Union[Post, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., gap: _Optional[bool] = ...) -> None: ...

class ListFollowersRequest(_message.Message):
    __slots__ = ("user", "page_size", "page_token")
    USER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user: str
    page_size: int
    page_token: str
    def __init__(self, user: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFollowingRequest(_message.Message):
    __slots__ = ("user", "page_size", "page_token")
    USER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user: str
    page_size: int
    page_token: str
    def __init__(self, user: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class MuteRequest(_message.Message):
    __slots__ = ("user", "target")
    USER_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    user: str
    target: str
    def __init__(self, user: _Optional[str] = ..., target: _Optional[str] = ...) -> None: ...

class MuteResponse(_message.Message):
    __slots__ = ("changed",)
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    def __init__(self, changed: _Optional[bool] = ...) -> None: ...

class UnmuteRequest(_message.Message):
    __slots__ = ("user", "target")
    USER_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    user: str
    target: str
    def __init__(self, user: _Optional[str] = ..., target: _Optional[str] = ...) -> None: ...

class UnmuteResponse(_message.Message):
    __slots__ = ("changed",)
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    def __init__(self, changed: _Optional[bool] = ...) -> None: ...

class ListMutedRequest(_message.Message):
    __slots__ = ("user", "page_size", "page_token")
    USER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user: str
    page_size: int
    page_token: str
    def __init__(self, user: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class BlockRequest(_message.Message):
    __slots__ = ("user", "target")
    USER_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    user: str
    target: str
    def __init__(self, user: _Optional[str] = ..., target: _Optional[str] = ...) -> None: ...

class BlockResponse(_message.Message):
    __slots__ = ("changed",)
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    def __init__(self, changed: _Optional[bool] = ...) -> None: ...

class UnblockRequest(_message.Message):
    __slots__ = ("user", "target")
    USER_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    user: str
    target: str
    def __init__(self, user: _Optional[str] = ..., target: _Optional[str] = ...) -> None: ...

class UnblockResponse(_message.Message):
    __slots__ = ("changed",)
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    def __init__(self, changed: _Optional[bool] = ...) -> None: ...

class ListBlockedRequest(_message.Message):
    __slots__ = ("user", "page_size", "page_token")
    USER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user: str
    page_size: int
    page_token: str
    def __init__(self, user: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class UserPage(_message.Message):
    __slots__ = ("users", "next_page_token")
    USERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    def __init__(self, users: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: str
    def __init__(self, user: _Optional[str] = ...) -> None: ...

class GetRoutingMapRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RoutingMap(_message.Message):
    __slots__ = ("epoch", "partitions", "nodes", "table")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    partitions: int
    nodes: _containers.RepeatedCompositeFieldContainer[RoutingNode]
    table: _containers.RepeatedCompositeFieldContainer[PartitionReplicas]
    def __init__(self, epoch: _Optional[int] = ..., partitions: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[RoutingNode, _Mapping]]] = ..., table: _Optional[_Iterable[_Union[PartitionReplicas, _Mapping]]] = ...) -> None: ...

class RoutingNode(_message.Message):
    __slots__ = ("id", "feed_address")
    ID_FIELD_NUMBER: _ClassVar[int]
    FEED_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    id: str
    feed_address: str
    def __init__(self, id: _Optional[str] = ..., feed_address: _Optional[str] = ...) -> None: ...

class PartitionReplicas(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, nodes: _Optional[_Iterable[int]] = ...) -> None: ...
