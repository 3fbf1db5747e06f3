"""Full disks, against real processes: a node whose disk fills up refuses writes with a status that
names it and the cause, keeps serving reads, the cluster keeps acknowledging writes through the
other replicas (Jepsen-style set check), and once space is back the node takes writes again by
itself and catches up (its peers' hints, then a repair of what it coordinated while full). The
disk is a size-limited tmpfs mounted as the node's data_dir (root only)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ClusterHandle, start_cluster, wait_settled
from tests.support import eventually, node_digests

FULL = "n2"


@pytest.fixture
def small_disk_cluster(tmp_path: Path) -> Iterator[tuple[ClusterHandle, Path]]:
    disk = tmp_path / "data" / FULL
    disk.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    handle = None
    try:
        handle = start_cluster(tmp_path, partitions=32, replication={"repair_interval_s": 0})
        yield handle, disk
    finally:
        if handle is not None:
            handle.stop()
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * (1 << 20))
            out.flush()
    return filler


def test_a_full_disk_refuses_writes_keeps_reads_and_loses_nothing(
    small_disk_cluster: tuple[ClusterHandle, Path],
) -> None:
    handle, disk = small_disk_cluster
    client = handle.client()
    users = [f"d{i}" for i in range(12)]
    for user in users:
        client.follow("reader", user)
    before = [client.post(users[i % 12], f"before {i}").id for i in range(24)]
    wait_settled(client)
    filler = fill(disk)
    acked, failed = [], []
    for i in range(120):  # every post's partition has n2 as a replica (RF=3 on 3 nodes)
        try:
            acked.append(client.post(users[i % 12], f"while full {i}").id)
        except Exception as exc:  # recorded: nothing may fail while two replicas take writes
            failed.append(repr(exc))
    assert not failed, failed[:3]
    status = {n.id: n for n in client.cluster_status().nodes}
    assert "No space left" in status[FULL].disk_error and status[FULL].healthy  # it says why, and serves
    assert not any(n.disk_error for node_id, n in status.items() if node_id != FULL)
    # Delivered: the posts whose first replica is the full node have no delivery record there (its
    # copy was never written); the others drive them after their 10 s check of old records.
    delivered = set(before + acked)
    eventually(lambda: _assert(delivered <= {p.id for p in client.iter_timeline("reader", page_size=200)}), 40.0)
    filler.unlink()  # space is back: nobody restarts or repairs anything

    def caught_up() -> None:
        node = {n.id: n for n in client.cluster_status().nodes}[FULL]
        assert not node.disk_error and not node.replication.catching_up, (node.disk_error, node.replication)

    eventually(caught_up, 60.0)
    after = [client.post(users[i % 12], f"after {i}").id for i in range(12)]  # writes reach it again
    wait_settled(client)
    secret = handle.local.secret
    digests = [node_digests(n.address, 32, secret) for n in handle.config.nodes]
    assert digests[0] == digests[1] == digests[2]  # the node that was full holds everything again
    eventually(lambda: _assert(set(after) <= {p.id for p in client.iter_timeline("reader", page_size=200)}), 20.0)


def _assert(condition: bool) -> None:
    assert condition
