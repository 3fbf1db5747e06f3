"""Failures a real deployment meets: a node down, a node restarted, a port already taken."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.cluster_map import initial_map
from common.errors import Unavailable
from ops.local_cluster import PROJECT_ROOT
from tests.integration.conftest import ClusterHandle, start_cluster, wait_settled
from tests.support import eventually


def user_on(handle: ClusterHandle, node_id: str, prefix: str) -> str:
    """A user id whose partition's primary is `node_id`."""
    cluster_map = initial_map(handle.config)
    for i in range(10_000):
        user = f"{prefix}{i}"
        if cluster_map.primary_for_key(user) == node_id:
            return user
    raise AssertionError("no such user")


@pytest.fixture
def single_copy(tmp_path: Path) -> Iterator[ClusterHandle]:
    handle = start_cluster(tmp_path, replication_factor=1)
    yield handle
    handle.stop()


def test_with_one_copy_a_down_node_fails_only_what_needs_it_and_loses_nothing(single_copy: ClusterHandle) -> None:
    """replication_factor = 1: the data on a down node is unavailable (test_replicas.py: with 3, not)."""
    own_cluster = single_copy
    client = own_cluster.client(timeout_s=3.0)
    on1, on2, on3 = (user_on(own_cluster, n, f"user-{n}-") for n in ("n1", "n2", "n3"))
    client.follow(on1, on3)
    before = client.post(on3, "before the crash")
    eventually(lambda: _equal([p.id for p in client.timeline(on1).items], [before.id]))

    own_cluster.kill("n2")
    with pytest.raises(Unavailable, match="n2"):
        client.timeline(on2)
    with pytest.raises(Unavailable, match="n2"):
        client.post(on2, "cannot be stored")
    # Everything that does not touch n2 keeps working.
    during = client.post(on3, "while n2 is down")
    eventually(lambda: _equal([p.id for p in client.timeline(on1).items], [during.id, before.id]))
    status = client.cluster_status()
    by_id = {n.id: n for n in status.nodes}
    assert not by_id["n2"].healthy and "n2" in by_id["n2"].error
    assert by_id["n1"].healthy and by_id["n3"].healthy

    own_cluster.restart("n2")
    eventually(lambda: _reachable(client, on2), timeout_s=5.0)  # the router reconnects within ~1 s
    # A read of on2 can take one path to n2 while another (the router's, a map-aware client's fail-over)
    # still waits out gRPC's reconnect backoff: the router must see n2 too before the follow relies on it.
    eventually(lambda: _equal({n.id: n.healthy for n in client.cluster_status().nodes}["n2"], True), timeout_s=10.0)
    assert client.follow(on2, on3) is True  # backfill reads n3, writes n2
    eventually(lambda: _equal([p.id for p in client.timeline(on2).items], [during.id, before.id]))


def test_data_survives_a_full_restart(own_cluster: ClusterHandle) -> None:
    client = own_cluster.client()
    client.follow("reader", "writer")
    posts = [client.post("writer", f"durable {i}") for i in range(5)]
    eventually(lambda: _equal(len(client.timeline("reader").items), 5))
    # Every replica has it before the stop: a replica that missed the writes (seen down as the
    # cluster started) would get them from its peers' hints after the restart, a moment late.
    wait_settled(client)
    own_cluster.local.stop(quiet=True)
    own_cluster.local.start(quiet=True)
    client = own_cluster.client()
    assert [p.id for p in client.timeline("reader").items] == [p.id for p in reversed(posts)]
    assert client.get_user("writer").post_count == 5


def _run_node(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m node --id n1` on `config`, as an operator would start it; returns when it exits."""
    return subprocess.run(
        [sys.executable, "-m", "node", "--config", str(config), "--id", "n1"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_a_node_refuses_a_port_another_process_serves(own_cluster: ClusterHandle, tmp_path: Path) -> None:
    taken = own_cluster.config.nodes[0].address
    clash = tmp_path / "clash.toml"
    clash.write_text(
        f'[[nodes]]\nid = "n1"\naddress = "{taken}"\ndata_dir = "other"\n[[routers]]\nid = 0\naddress = "127.0.0.1:1"\n'
    )
    result = _run_node(clash, {**os.environ, "FEEDRING_CLUSTER_SECRET": own_cluster.local.secret})
    assert result.returncode != 0
    assert "cannot listen on " + taken in result.stderr
    # The running node is untouched.
    assert own_cluster.local.healthy(taken)


def test_a_node_without_the_cluster_secret_says_where_it_looked(tmp_path: Path) -> None:
    config = tmp_path / "lonely.toml"
    config.write_text('[[nodes]]\nid = "n1"\naddress = "127.0.0.1:1"\n[[routers]]\nid = 0\naddress = "127.0.0.1:2"\n')
    result = _run_node(config, {k: v for k, v in os.environ.items() if k != "FEEDRING_CLUSTER_SECRET"})
    assert result.returncode == 2
    assert "no cluster secret" in result.stderr and str(tmp_path / ".run" / "cluster.secret") in result.stderr


def test_start_and_stop_are_safe_to_repeat(own_cluster: ClusterHandle, capsys: pytest.CaptureFixture[str]) -> None:
    pids = {p.name: pid for p, pid, _ in own_cluster.local.status()}
    own_cluster.local.start()
    assert "already running" in capsys.readouterr().out
    assert {p.name: pid for p, pid, _ in own_cluster.local.status()} == pids
    own_cluster.local.stop()
    assert "stopped 4 process(es)" in capsys.readouterr().out
    own_cluster.local.stop()
    assert "was not running" in capsys.readouterr().out
    assert all(pid is None for _, pid, _ in own_cluster.local.status())


def test_an_invalid_cluster_file_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[limits]\npage_size_max = 0\n"
        '[[nodes]]\nid = "n1"\naddress = "127.0.0.1:1"\n'
        '[[routers]]\nid = 0\naddress = "127.0.0.1:2"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "node", "--config", str(bad), "--id", "n1"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "limits.page_size_max" in result.stderr


def _reachable(client, user: str) -> None:  # type: ignore[no-untyped-def]
    try:
        client.timeline(user)
    except Unavailable as exc:
        raise AssertionError(str(exc)) from exc


def _equal(actual: object, expected: object) -> None:
    assert actual == expected


def test_a_router_with_two_workers_shares_its_port_and_never_repeats_an_id(tmp_path: Path) -> None:
    from tests.integration.conftest import start_cluster

    handle = start_cluster(tmp_path, router_workers=2)
    try:
        # Separate connections spread over the workers; through the router, whose ids are checked.
        clients = [handle.client(map_aware=False) for _ in range(6)]
        ids = [c.post("busy-author", f"from client {i}").id for i in range(40) for c in clients]
        assert len(set(ids)) == len(ids)
        generators = {(post_id >> 12) & 0x3FF for post_id in ids}
        assert generators <= {0, 1}  # router 0, worker 0 or 1
        assert clients[0].get_user("busy-author").post_count == len(ids)
    finally:
        handle.stop()
