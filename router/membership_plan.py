"""Planning a membership change: pure functions over cluster maps, no I/O.

``plan_change`` checks an add or remove against the current map and returns the pending map (epoch
N+1) whose table the change moves to; ``Transfers`` groups its moves the ways the runner needs
them (per source -> destination stream, per source to seal and drop, per destination to clean up
after an abort); ``describe`` renders a plan as the progress message the CLI shows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from common.cluster_map import ClusterMap, Member
from common.config import is_address, is_node_id
from common.errors import FailedPrecondition, InvalidArgument, NotFound
from protos import admin_pb2

__all__ = ["plan_change", "Transfers", "describe", "Kind", "repairs_after_dead"]

Kind = admin_pb2.ChangeMembershipRequest


def plan_change(
    current: ClusterMap,
    kind: int,
    node_id: str,
    address: str = "",
    dead: bool = False,
    feed_address: str = "",
    force: bool = False,
) -> ClusterMap:
    """The pending map of adding (`address` given; `feed_address`, its public Feed API, if it serves
    one) or removing `node_id` (`dead`: gone for good, its replicas rebuilt from the others; `force`:
    even below the replication factor), or the error saying why not."""
    if current.changing:
        raise FailedPrecondition(
            f"another membership change is in progress ({current.change!r}, epoch {current.epoch}): one change "
            "at a time. Run `feedring node resume` to finish it or `feedring node abort` to roll it back"
        )
    if kind == Kind.ADD:
        if not node_id or not address:
            raise InvalidArgument("adding a node needs its id and address")
        if not is_node_id(node_id):
            raise InvalidArgument(f"node id must be 1-64 ASCII letters, digits, '-' or '_' (got {node_id!r})")
        if not is_address(address):
            raise InvalidArgument(f"node address must be host:port (got {address!r})")
        if current.member(node_id):
            raise FailedPrecondition(f"node {node_id} is already a member at epoch {current.epoch}")
        if any(m.address == address for m in current.members):
            raise FailedPrecondition(f"address {address} is already used by another node")
        if feed_address and not is_address(feed_address):
            raise InvalidArgument(f"the node's feed address must be host:port (got {feed_address!r})")
        if feed_address and any(feed_address in (m.address, m.feed_address) for m in current.members):
            raise FailedPrecondition(f"address {feed_address} is already used by another node")
        new = Member(node_id, address, feed_address=feed_address)
        return current.begin_change((*current.members, new), f"add {node_id} {address}")
    if kind == Kind.REMOVE:
        if current.member(node_id) is None:
            known = ", ".join(m.id for m in current.members)
            raise NotFound(f"node {node_id!r} is not a member (members: {known})")
        members = tuple(m for m in current.members if m.id != node_id)
        if not members:
            raise FailedPrecondition(f"cannot remove {node_id}: it is the last node and holds all the data")
        rf = current.replication_factor
        if len(members) < min(rf, len(current.members)) and not force:
            # As Cassandra refuses a decommission that would leave fewer nodes than the replication factor.
            raise FailedPrecondition(
                f"removing {node_id} would leave {len(members)} node{'s' * (len(members) != 1)} for replication "
                f"factor {rf}: every partition would keep {len(members)} of its {rf} copies. Add a node first, "
                "or pass --force to accept fewer copies"
            )
        if not dead:
            return current.begin_change(members, f"remove {node_id}")
        plan = current.begin_change(members, f"remove {node_id} (dead)", dead=(node_id,))
        lost = plan.without_survivors()
        if lost:
            raise FailedPrecondition(
                f"cannot rebuild {node_id}'s data: {len(lost)} partitions (e.g. {lost[:5]}) have no other "
                "replica. Bring the node back, or restore it from a backup"
            )
        return plan
    raise InvalidArgument("kind must be ADD or REMOVE to plan a change")


def repairs_after_dead(plan: ClusterMap) -> dict[str, list[int]]:
    """When a dead node leaves: per node, the partitions it repairs with their other replicas before
    the change ends, each partition once, by its first replica that held it before and keeps it.
    Every partition, not only the dead node's: it coordinated writes and deliveries to any replica
    anywhere, and the hints it held for a replica that missed one died with it (found by
    test_a_node_gone_for_good...: an inbox entry on two of its three replicas, read from the third)."""
    out: dict[str, list[int]] = {}
    if not plan.dead:
        return out
    for part, (old, new) in enumerate(zip(plan.table, plan.pending_table, strict=True)):
        keeper = next((n for n in new if n in old and n not in plan.dead), None)
        if keeper is not None:
            out.setdefault(keeper, []).append(part)
    return out


@dataclass(frozen=True)
class Transfers:
    """A pending map's moves, grouped: partitions per (source, destination) stream, per source, per
    destination."""

    streams: dict[tuple[str, str], list[int]]
    by_source: dict[str, list[int]]
    by_destination: dict[str, list[int]]

    @classmethod
    def of(cls, plan: ClusterMap) -> Transfers:
        streams: dict[tuple[str, str], list[int]] = defaultdict(list)
        by_source: dict[str, list[int]] = defaultdict(list)
        by_destination: dict[str, list[int]] = defaultdict(list)
        for part, source, destination in plan.moves():
            streams[(source, destination)].append(part)
            by_source[source].append(part)
            by_destination[destination].append(part)
        return cls(dict(streams), dict(by_source), dict(by_destination))

    @property
    def partitions(self) -> int:
        return len({p for parts in self.by_source.values() for p in parts})


def describe(plan: ClusterMap, phase: str, message: str = "") -> admin_pb2.ChangeProgress:
    """The plan as a ChangeProgress: the epochs it goes through, every source -> destination, and
    the copies each partition keeps once it is done."""
    transfers = Transfers.of(plan)
    copies = [len(replicas) for replicas in plan.pending_table] or [0]
    return admin_pb2.ChangeProgress(
        replication_factor=plan.replication_factor,
        copies_min=min(copies),
        copies_max=max(copies),
        phase=phase,
        change=plan.change,
        from_epoch=plan.epoch - 1,
        to_epoch=plan.epoch + 1,
        partitions_total=plan.partitions,
        partitions_moving=transfers.partitions,
        moves=[
            admin_pb2.PlannedMove(source=s, destination=d, partitions=len(parts))
            for (s, d), parts in sorted(transfers.streams.items())
        ],
        transfers_total=len(transfers.streams),
        message=message,
    )
