"""Full disks, against real processes: a node whose disk fills up refuses writes with a status that
names it and the cause, keeps serving reads, the cluster keeps acknowledging writes through the
other replicas (Jepsen-style set check), and once space is back the node takes writes again by
itself and catches up (its peers' hints, then a repair of what it coordinated while full). The
disk is a size-limited tmpfs mounted as the node's data_dir (root only). A node whose LevelDB lost
the end of a table file while it was down refuses to start, saying what to do, and doing it (a
dead removal) loses nothing acknowledged."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from protos import admin_pb2, admin_pb2_grpc
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


def test_a_table_cut_short_while_the_node_was_down_keeps_it_from_starting_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    handle = start_cluster(tmp_path, nodes=4, partitions=32, replication={"repair_interval_s": 0})
    try:
        client = handle.client(timeout_s=10.0)
        authors = [f"t{i}" for i in range(12)]
        client.bulk_follow([("fan", a) for a in authors])
        acked = {client.post(a, f"before {a}").id for a in authors}
        wait_settled(client)
        handle.restart("n4")  # opening the store writes its log into a table file
        handle.kill("n4")
        table = max((tmp_path / "data" / "n4").glob("*.ldb"), key=lambda p: p.stat().st_size)
        with open(table, "r+b") as f:
            f.truncate(table.stat().st_size // 2)  # a disk that lost the end of a file
        acked |= {client.post(a, f"while down {a}").id for a in authors}  # (raises if any fails)
        handle.local.start_process("n4")
        assert handle.local.wait_exit("n4", timeout_s=30) == 2
        said = handle.local.log_path("n4").read_text()
        assert table.name in said and "feedring node remove n4 --dead" in said, said[-2000:]
        with handle.client() as admin:  # what it said to do
            request = admin_pb2.ChangeMembershipRequest(
                kind=admin_pb2.ChangeMembershipRequest.REMOVE, node_id="n4", dead=True
            )
            progress = list(admin_pb2_grpc.AdminStub(admin.calls).ChangeMembership(request, timeout=120))
        assert progress[-1].phase == "DONE", progress[-1].message
        wait_settled(client)
        assert {p.id for a in authors for p in client.iter_user_posts(a)} == acked
        assert {p.id for p in client.iter_timeline("fan", page_size=200)} == acked
    finally:
        handle.stop()


def _assert(condition: bool) -> None:
    assert condition
