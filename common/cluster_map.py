"""The cluster map: nodes, partition -> replica list, and the epoch it is valid at.

Partitioning is decoupled from placement (Dynamo's "strategy 3"): the number of partitions is fixed
for the life of the cluster and a key's partition never changes; only the partition table, built from
a consistent-hash ring (uhashring, md5 mode) over stable node ids, changes with membership. So a
membership change moves whole partitions, each one contiguous LevelDB range, and only those whose
replicas change. Maps are immutable values: a new epoch is a new ClusterMap, swapped in whole.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from uhashring import HashRing

from common.config import ClusterConfig
from common.partitioning import partition_of
from protos import cluster_pb2

__all__ = ["Member", "ClusterMap", "NODE_GENERATORS", "build_table", "initial_map", "empty_map"]


# Post-id generators (feed/post_ids.py) 512..1023 belong to nodes, one each, kept in the map so
# that no two live nodes ever share one (routers have 0..511, from their id and worker).
NODE_GENERATORS = range(512, 1024)


@dataclass(frozen=True)
class Member:
    id: str
    address: str  # its Storage API (node to node, router to node)
    weight: int = 1
    feed_address: str = ""  # its public Feed API, which map-aware clients call ("": it serves none)
    generator: int = 0  # its post-id generator (NODE_GENERATORS; 0: a map written before they were)

    def to_proto(self) -> cluster_pb2.NodeInfo:
        return cluster_pb2.NodeInfo(
            id=self.id,
            address=self.address,
            weight=self.weight,
            feed_address=self.feed_address,
            generator=self.generator,
        )

    @classmethod
    def from_proto(cls, msg: cluster_pb2.NodeInfo) -> Member:
        return cls(msg.id, msg.address, msg.weight or 1, msg.feed_address, msg.generator)


@dataclass(frozen=True)
class ClusterMap:
    epoch: int
    partitions: int
    replication_factor: int
    vnodes: int
    members: tuple[Member, ...]
    table: tuple[tuple[str, ...], ...]  # index = partition id; first = primary
    # A membership change in progress (empty when none): the table being moved to, what the change
    # is, and the nodes it removes. Routing stays on `table` until the change commits.
    pending_table: tuple[tuple[str, ...], ...] = ()
    change: str = ""
    leaving: tuple[Member, ...] = ()
    dead: tuple[str, ...] = ()  # leaving nodes gone for good: never contacted, never a source

    def partition(self, key: str) -> int:
        return partition_of(key, self.partitions)

    def replicas(self, partition: int) -> tuple[str, ...]:
        return self.table[partition]

    def primary(self, partition: int) -> str:
        return self.table[partition][0]

    def primary_for_key(self, key: str) -> str:
        return self.table[partition_of(key, self.partitions)][0]

    def address(self, node_id: str) -> str:
        for member in self.members:
            if member.id == node_id:
                return member.address
        raise KeyError(node_id)

    def owned_by(self, node_id: str) -> frozenset[int]:
        """Partitions the node holds a replica of."""
        return frozenset(p for p, replicas in enumerate(self.table) if node_id in replicas)

    def primaries_by_node(self) -> dict[str, int]:
        counts = {m.id: 0 for m in self.members}
        for replicas in self.table:
            counts[replicas[0]] += 1
        return counts

    # -- membership changes ----------------------------------------------------------------------

    @property
    def changing(self) -> bool:
        return bool(self.pending_table)

    def member(self, node_id: str) -> Member | None:
        return next((m for m in self.members if m.id == node_id), None)

    def generator(self, node_id: str) -> int:
        """The node's post-id generator. A map from before generators were kept gives each member
        one by its place among the members' sorted ids (the same on every node holding the map)."""
        member = self.member(node_id)
        if member is None:
            raise KeyError(node_id)
        if member.generator:
            return member.generator
        return NODE_GENERATORS[sorted(m.id for m in self.members).index(node_id)]

    def with_generators(self, members: tuple[Member, ...]) -> tuple[Member, ...]:
        """`members` with a generator each: a member of this map keeps its own; a new one gets the
        smallest free one."""
        known = {m.id: m.generator or self.generator(m.id) for m in self.members}
        members = tuple(replace(m, generator=m.generator or known.get(m.id, 0)) for m in members)
        taken = {*known.values(), *(m.generator for m in (*self.leaving, *members))}
        free = (g for g in NODE_GENERATORS if g not in taken)
        return tuple(m if m.generator else replace(m, generator=next(free)) for m in members)

    def begin_change(self, new_members: tuple[Member, ...], description: str, dead: tuple[str, ...] = ()) -> ClusterMap:
        """The next epoch's map: routing unchanged, the new table pending. Nodes that are added are
        members from now on (so their addresses are known); removed ones are marked leaving."""
        new_table = build_table(new_members, self.partitions, self.replication_factor, self.vnodes)
        new_ids = {m.id for m in new_members}
        new_members = self.with_generators(new_members)
        return replace(
            self,
            epoch=self.epoch + 1,
            members=tuple(sorted({m.id: m for m in (*self.members, *new_members)}.values(), key=lambda m: m.id)),
            pending_table=new_table,
            change=description,
            leaving=tuple(m for m in self.members if m.id not in new_ids),
            dead=dead,
        )

    def moves(self) -> list[tuple[int, str, str]]:
        """(partition, source, destination) for every replica the pending change adds; the source
        is the partition's first replica that is not dead."""
        out = []
        for part, (old, new) in enumerate(zip(self.table, self.pending_table, strict=True)):
            alive = [n for n in old if n not in self.dead]
            for node_id in new:
                if node_id not in old and alive:
                    out.append((part, alive[0], node_id))
        return out

    def without_survivors(self) -> list[int]:
        """Partitions of the pending change whose every current replica is dead (nothing to copy from)."""
        return [p for p, old in enumerate(self.table) if self.dead and all(n in self.dead for n in old)]

    def commit_change(self) -> ClusterMap:
        leaving = {m.id for m in self.leaving}
        return replace(
            self,
            epoch=self.epoch + 1,
            members=tuple(m for m in self.members if m.id not in leaving),
            table=self.pending_table,
            pending_table=(),
            change="",
            leaving=(),
            dead=(),
        )

    def abort_change(self) -> ClusterMap:
        """Back to the current table; a node that was being added is no member any more."""
        in_use = {n for replicas in self.table for n in replicas} | {m.id for m in self.leaving}
        return replace(
            self,
            epoch=self.epoch + 1,
            members=tuple(m for m in self.members if m.id in in_use),
            pending_table=(),
            change="",
            leaving=(),
            dead=(),
        )

    def to_proto(self) -> cluster_pb2.ClusterMap:
        return cluster_pb2.ClusterMap(
            epoch=self.epoch,
            partitions=self.partitions,
            replication_factor=self.replication_factor,
            vnodes=self.vnodes,
            nodes=[m.to_proto() for m in self.members],
            table=[cluster_pb2.ReplicaList(node_ids=list(r)) for r in self.table],
            pending_table=[cluster_pb2.ReplicaList(node_ids=list(r)) for r in self.pending_table],
            change=self.change,
            leaving=[m.to_proto() for m in self.leaving],
            dead=list(self.dead),
        )

    @classmethod
    def from_proto(cls, msg: cluster_pb2.ClusterMap) -> ClusterMap:
        return cls(
            epoch=msg.epoch,
            partitions=msg.partitions,
            replication_factor=msg.replication_factor,
            vnodes=msg.vnodes,
            members=tuple(Member.from_proto(n) for n in msg.nodes),
            table=tuple(tuple(r.node_ids) for r in msg.table),
            pending_table=tuple(tuple(r.node_ids) for r in msg.pending_table),
            change=msg.change,
            leaving=tuple(Member.from_proto(n) for n in msg.leaving),
            dead=tuple(msg.dead),
        )

    def to_bytes(self) -> bytes:
        return bytes(self.to_proto().SerializeToString(deterministic=True))

    @classmethod
    def from_bytes(cls, raw: bytes) -> ClusterMap:
        msg = cluster_pb2.ClusterMap()
        msg.ParseFromString(raw)
        return cls.from_proto(msg)


def build_table(
    members: tuple[Member, ...], partitions: int, replication_factor: int, vnodes: int
) -> tuple[tuple[str, ...], ...]:
    """Each partition's preference list: the first `replication_factor` distinct nodes clockwise of
    the partition's point on the ring. Deterministic for a given membership."""
    ring = HashRing(
        nodes={m.id: {"weight": m.weight, "vnodes": vnodes} for m in sorted(members, key=lambda m: m.id)},
        vnodes=vnodes,
    )
    size = min(replication_factor, len(members))
    return tuple(tuple(conf["nodename"] for conf in ring.range(f"p{p}", size=size)) for p in range(partitions))


def empty_map(config: ClusterConfig) -> ClusterMap:
    """What a node that is not (yet) in any map starts with: epoch 0, owning nothing."""
    return ClusterMap(0, config.partitions, config.replication_factor, config.vnodes, (), ())


def initial_map(config: ClusterConfig) -> ClusterMap:
    """Epoch 1, seeded from cluster.toml; after that the live map stored on the nodes is the truth."""
    if len(config.nodes) > len(NODE_GENERATORS):
        raise ValueError(f"at most {len(NODE_GENERATORS)} nodes: there are no more post-id generators")
    members = tuple(Member(n.id, n.address, n.weight, n.feed, NODE_GENERATORS[i]) for i, n in enumerate(config.nodes))
    return ClusterMap(
        epoch=1,
        partitions=config.partitions,
        replication_factor=config.replication_factor,
        vnodes=config.vnodes,
        members=members,
        table=build_table(members, config.partitions, config.replication_factor, config.vnodes),
    )
