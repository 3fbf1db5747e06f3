from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeInfo(_message.Message):
    __slots__ = ("id", "address", "weight", "feed_address", "generator")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    FEED_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    weight: int
    feed_address: str
    generator: int
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., weight: _Optional[int] = ..., feed_address: _Optional[str] = ..., generator: _Optional[int] = ...) -> None: ...

class ReplicaList(_message.Message):
    __slots__ = ("node_ids",)
    NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    node_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, node_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ClusterMap(_message.Message):
    __slots__ = ("epoch", "partitions", "replication_factor", "vnodes", "nodes", "table", "pending_table", "change", "leaving", "dead")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    VNODES_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    PENDING_TABLE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    LEAVING_FIELD_NUMBER: _ClassVar[int]
    DEAD_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    partitions: int
    replication_factor: int
    vnodes: int
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    table: _containers.RepeatedCompositeFieldContainer[ReplicaList]
    pending_table: _containers.RepeatedCompositeFieldContainer[ReplicaList]
    change: str
    leaving: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    dead: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, epoch: _Optional[int] = ..., partitions: _Optional[int] = ..., replication_factor: _Optional[int] = ..., vnodes: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ..., table: _Optional[_Iterable[_Union[ReplicaList, _Mapping]]] = ..., pending_table: _Optional[_Iterable[_Union[ReplicaList, _Mapping]]] = ..., change: _Optional[str] = ..., leaving: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ..., dead: _Optional[_Iterable[str]] = ...) -> None: ...
