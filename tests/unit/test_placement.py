"""Stable key -> partition hashing and the consistent-hash partition table."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from common.cluster_map import ClusterMap, Member, build_table
from common.partitioning import partition_of


def test_partition_is_the_same_in_every_process() -> None:
    keys = ["alice", "bob", "celebrity#3", "ü-nicode"]
    code = f"from common.partitioning import partition_of; print([partition_of(k, 1024) for k in {keys!r}])"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "random")
    }
    assert outputs == {str([partition_of(k, 1024) for k in keys]) + "\n"}


@given(st.text(min_size=1, max_size=64), st.integers(1, 65535))
def test_partition_is_in_range(key: str, partitions: int) -> None:
    assert 0 <= partition_of(key, partitions) < partitions


def test_partitions_spread_evenly() -> None:
    counts = Counter(partition_of(f"user{i}", 64) for i in range(64_000))
    assert max(counts.values()) / min(counts.values()) < 1.3


def members(*ids: str) -> tuple[Member, ...]:
    return tuple(Member(i, f"127.0.0.1:{7100 + n}") for n, i in enumerate(ids))


def test_table_does_not_depend_on_member_order() -> None:
    assert build_table(members("n1", "n2", "n3"), 256, 1, 160) == build_table(members("n3", "n1", "n2"), 256, 1, 160)


def test_replica_lists_have_distinct_nodes() -> None:
    table = build_table(members("n1", "n2", "n3", "n4"), 256, 3, 160)
    assert all(len(set(replicas)) == 3 for replicas in table)


def test_primaries_are_balanced() -> None:
    table = build_table(members("n1", "n2", "n3", "n4"), 1024, 1, 160)
    counts = Counter(r[0] for r in table)
    assert max(counts.values()) / (1024 / 4) < 1.3


def test_weight_shifts_the_share() -> None:
    heavy = (Member("n1", "a", 2), Member("n2", "b", 1), Member("n3", "c", 1))
    counts = Counter(r[0] for r in build_table(heavy, 1024, 1, 160))
    assert counts["n1"] > 1.5 * counts["n2"]


def test_map_round_trips_through_bytes() -> None:
    m = members("n1", "n2")
    cluster_map = ClusterMap(7, 64, 1, 160, m, build_table(m, 64, 1, 160))
    assert ClusterMap.from_bytes(cluster_map.to_bytes()) == cluster_map
    assert cluster_map.partition("alice") == partition_of("alice", 64)
