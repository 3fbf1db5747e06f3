"""Planning membership changes on the cluster map: what moves, and what the epochs become."""

from __future__ import annotations

import pytest

from common.cluster_map import ClusterMap, Member, build_table
from common.errors import FailedPrecondition
from router.membership_plan import Kind, describe, plan_change, repairs_after_dead


def three_nodes(partitions: int = 512) -> ClusterMap:
    members = tuple(Member(f"n{i}", f"127.0.0.1:{7100 + i}") for i in (1, 2, 3))
    return ClusterMap(1, partitions, 1, 160, members, build_table(members, partitions, 1, 160))


def test_adding_a_fourth_node_moves_about_a_quarter_all_to_it() -> None:
    current = three_nodes()
    plan = current.begin_change((*current.members, Member("n4", "127.0.0.1:7104")), "add n4")
    moves = plan.moves()
    assert plan.epoch == 2 and plan.changing and plan.table == current.table  # routing unchanged
    assert {destination for _, _, destination in moves} == {"n4"}
    assert abs(len(moves) / 512 - 0.25) <= 0.15 * 0.25
    assert all(current.primary(p) == source for p, source, _ in moves)
    committed = plan.commit_change()
    assert committed.epoch == 3 and not committed.changing
    assert committed.owned_by("n4") == {p for p, _, _ in moves}


def test_removing_a_node_moves_only_its_partitions() -> None:
    current = three_nodes()
    plan = current.begin_change(tuple(m for m in current.members if m.id != "n2"), "remove n2")
    assert {p for p, _, _ in plan.moves()} == current.owned_by("n2")
    assert {source for _, source, _ in plan.moves()} == {"n2"}
    assert [m.id for m in plan.leaving] == ["n2"]
    committed = plan.commit_change()
    assert "n2" not in {m.id for m in committed.members} and committed.owned_by("n2") == frozenset()


def test_abort_returns_to_the_current_table_without_the_new_node() -> None:
    current = three_nodes()
    plan = current.begin_change((*current.members, Member("n4", "x:1")), "add n4")
    aborted = plan.abort_change()
    assert aborted.epoch == 3 and aborted.table == current.table and not aborted.changing
    assert [m.id for m in aborted.members] == ["n1", "n2", "n3"]


def test_a_pending_map_survives_the_wire() -> None:
    current = three_nodes(64)
    plan = current.begin_change(tuple(m for m in current.members if m.id != "n3"), "remove n3")
    assert ClusterMap.from_bytes(plan.to_bytes()) == plan


def test_plan_change_refuses_what_cannot_work_with_a_reason() -> None:
    import pytest

    from common.errors import FailedPrecondition, InvalidArgument, NotFound
    from router.membership_plan import Kind, plan_change

    current = three_nodes(64)
    with pytest.raises(FailedPrecondition, match="already a member"):
        plan_change(current, Kind.ADD, "n1", "x:1")
    with pytest.raises(FailedPrecondition, match="already used"):
        plan_change(current, Kind.ADD, "n4", "127.0.0.1:7101")
    with pytest.raises(InvalidArgument, match="id and address"):
        plan_change(current, Kind.ADD, "n4")
    with pytest.raises(NotFound, match="members: n1, n2, n3"):
        plan_change(current, Kind.REMOVE, "n9")
    with pytest.raises(InvalidArgument, match="must be host:port .got '0'"):  # found by the fuzz suite
        plan_change(current, Kind.ADD, "n4", "0")
    with pytest.raises(InvalidArgument, match="node id must be"):
        plan_change(current, Kind.ADD, "n\x004", "127.0.0.1:7104")
    pending = plan_change(current, Kind.REMOVE, "n2")
    with pytest.raises(FailedPrecondition, match="one change at a time"):
        plan_change(pending, Kind.ADD, "n4", "x:1")


def test_transfers_group_every_move_by_stream_source_and_destination() -> None:
    from router.membership_plan import Kind, Transfers, describe, plan_change

    current = three_nodes(128)
    plan = plan_change(current, Kind.ADD, "n4", "x:4")
    transfers = Transfers.of(plan)
    assert set(transfers.by_destination) == {"n4"}
    assert sorted(transfers.by_destination["n4"]) == sorted(p for p, _, _ in plan.moves())
    assert {s for s, _ in transfers.streams} == set(transfers.by_source)
    assert sum(len(p) for p in transfers.streams.values()) == len(plan.moves()) == transfers.partitions
    progress = describe(plan, "PLANNED")
    assert (progress.from_epoch, progress.to_epoch, progress.partitions_moving) == (1, 3, transfers.partitions)
    assert sum(m.partitions for m in progress.moves) == transfers.partitions


def replicated(nodes: int = 4, partitions: int = 256, rf: int = 3) -> ClusterMap:
    members = tuple(Member(f"n{i}", f"127.0.0.1:{7100 + i}") for i in range(1, nodes + 1))
    return ClusterMap(1, partitions, rf, 160, members, build_table(members, partitions, rf, 160))


def test_removing_a_dead_node_rebuilds_its_replicas_from_the_survivors() -> None:
    current = replicated()
    plan = plan_change(current, Kind.REMOVE, "n4", dead=True)
    assert plan.dead == ("n4",) and "(dead)" in plan.change
    moves = plan.moves()
    assert {p for p, _, _ in moves} == current.owned_by("n4")  # each lost replica is rebuilt ...
    assert all(source != "n4" and source in current.replicas(p) for p, source, _ in moves)  # ... from a survivor
    assert ClusterMap.from_proto(plan.to_proto()).dead == ("n4",)  # survives a router restart (resume)
    assert plan.commit_change().dead == ()


def test_a_dead_node_holding_the_only_copy_cannot_be_removed() -> None:
    current = replicated(nodes=3, rf=1)
    with pytest.raises(FailedPrecondition, match="no other replica"):
        plan_change(current, Kind.REMOVE, "n2", dead=True)


def test_fewer_nodes_than_the_replication_factor_keep_a_replica_on_every_node() -> None:
    current = replicated(nodes=3, rf=3)
    committed = plan_change(current, Kind.REMOVE, "n3", dead=True, force=True).commit_change()
    assert all(set(r) == {"n1", "n2"} for r in committed.table)


def test_a_removal_below_the_replication_factor_is_refused_unless_forced_and_plans_say_what_each_keeps() -> None:
    current = replicated(nodes=3, rf=3)
    for dead in (False, True):
        with pytest.raises(FailedPrecondition, match="would leave 2 nodes for replication factor 3: every partition"):
            plan_change(current, Kind.REMOVE, "n1", dead=dead)
    forced = describe(plan_change(current, Kind.REMOVE, "n1", force=True), "PLANNED")
    assert (forced.replication_factor, forced.copies_min, forced.copies_max) == (3, 2, 2)
    grown = describe(plan_change(current, Kind.ADD, "n4", "127.0.0.1:7104"), "PLANNED")
    assert (grown.copies_min, grown.copies_max) == (3, 3)
    bigger = replicated(nodes=4, rf=3)
    shrunk = describe(plan_change(bigger, Kind.REMOVE, "n4"), "PLANNED")  # 3 nodes stay: allowed
    assert (shrunk.copies_min, shrunk.copies_max) == (3, 3)


def test_after_a_dead_node_every_partition_is_repaired_once_by_a_replica_that_keeps_it() -> None:
    members = tuple(Member(f"n{i}", f"127.0.0.1:{7100 + i}") for i in (1, 2, 3, 4))
    current = ClusterMap(1, 64, 3, 160, members, build_table(members, 64, 3, 160))
    plan = plan_change(current, Kind.REMOVE, "n4", dead=True)
    repairs = repairs_after_dead(plan)
    assert "n4" not in repairs
    assert sorted(p for parts in repairs.values() for p in parts) == list(range(64))  # each once
    assert all(n in current.replicas(p) and n in plan.pending_table[p] for n, parts in repairs.items() for p in parts)
    assert repairs_after_dead(current.begin_change(members[:3], "remove n4")) == {}  # a graceful removal
