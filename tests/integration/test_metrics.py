"""Metrics on a real cluster: every process serves Prometheus text on its own port, its counters move
with traffic (refused and invalid calls counted under their status code), and `feedring top --once`
shows every process."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest

from client import top
from client.cli import main as cli_main
from common.config import load
from common.errors import InvalidArgument, Unauthenticated
from tests.integration.conftest import ClusterHandle
from tests.support import eventually


def _scrape_all(handle: ClusterHandle) -> dict[str, top.Scrape]:
    scrapes = {t.name: top.scrape(t) for t in top.targets(handle.config)}
    assert not {name: s.error for name, s in scrapes.items() if s.error}
    return scrapes


def test_every_process_serves_metrics_whose_counters_move_with_traffic(cluster: ClusterHandle) -> None:
    found = top.targets(cluster.config)
    assert sorted(t.name for t in found) == ["0.0", "n1", "n2", "n3"]
    before = _scrape_all(cluster)
    client = cluster.client(map_aware=False)  # the router's own counters are checked
    run = uuid.uuid4().hex[:8]
    author, fans = f"m-author-{run}", [f"m-fan{i}-{run}" for i in range(5)]
    client.bulk_follow([(fan, author) for fan in fans])
    client.post(author, "counted")
    eventually(lambda: _assert_delivered(client, fans), timeout_s=10.0)

    def moved() -> dict[str, top.Scrape]:
        after = _scrape_all(cluster)
        router, old = after["0.0"], before["0.0"]
        for method in ("Post", "GetTimeline"):
            grown = router.total("feedring_rpc_calls_total", method=method, code="OK") - old.total(
                "feedring_rpc_calls_total", method=method, code="OK"
            )
            assert grown >= 1, f"router counted no {method}"
        assert router.total("feedring_key_cache_entries", cache="partition_of") >= 1
        assert router.total("feedring_rpc_seconds_count", method="GetTimeline") > old.total(
            "feedring_rpc_seconds_count", method="GetTimeline"
        )
        for name in ("n1", "n2", "n3"):
            node = after[name]
            assert node.total("feedring_rpc_calls_total") > before[name].total("feedring_rpc_calls_total")
            assert node.total("feedring_keys", family="posts") >= 1  # RF=3 on 3 nodes: every node has it
            assert node.total("feedring_leveldb_bytes") > 0
            assert node.total("process_resident_memory_bytes") > 10e6
            assert node.has("feedring_delivery_records") and node.has("feedring_hints")
        # The state snapshot is rebuilt every second: the deliveries show up in a moment.
        prefixes = sum(after[n].total("feedring_key_cache_entries", cache="inbox_prefixes") for n in ("n1", "n2", "n3"))
        assert prefixes >= 5  # the fans' inboxes, on the nodes that delivered to them
        writes = sum(after[n].total("feedring_delivery_inbox_writes_total") for n in ("n1", "n2", "n3"))
        assert writes >= sum(before[n].total("feedring_delivery_inbox_writes_total") for n in ("n1", "n2", "n3")) + 5

        def first_pages(scrapes: dict[str, top.Scrape]) -> float:  # each fan's timeline read, from memory or not
            return sum(
                scrapes[n].total(f"feedring_timeline_cache_{kind}_total")
                for n in ("n1", "n2", "n3")
                for kind in ("hits", "misses")
            )

        assert first_pages(after) >= first_pages(before) + 5
        # Every server times its garbage collections once started (common/heap.py); traffic makes some.
        paused = {name: s.total("feedring_gc_pause_seconds_count") for name, s in after.items()}
        assert all(count >= 1 for count in paused.values()), paused
        return after

    eventually(moved, timeout_s=5.0, interval_s=0.3)


def _assert_delivered(client: object, fans: list[str]) -> None:
    for fan in fans:
        assert [p.text for p in client.timeline(fan).items] == ["counted"]  # type: ignore[attr-defined]


def test_a_router_relays_timeline_reads_whole_to_the_nodes(cluster: ClusterHandle) -> None:
    """router/read_relay.py: each read through a router is one GetTimeline a node answers."""
    client = cluster.client(map_aware=False)
    run = uuid.uuid4().hex[:8]
    reader, author = f"relay-reader-{run}", f"relay-author-{run}"
    client.follow(reader, author)
    post = client.post(author, "relayed")
    eventually(lambda: _assert_ids(client, reader, [post.id]), timeout_s=10.0)
    time.sleep(1.1)  # the state snapshots are rebuilt every second
    before = _scrape_all(cluster)
    for _ in range(10):
        _assert_ids(client, reader, [post.id])

    def relayed() -> None:
        after = _scrape_all(cluster)
        routers = [name for name in after if "." in name]

        def grown(names: list[str], metric: str, **match: str) -> float:
            return sum(after[n].total(metric, **match) - before[n].total(metric, **match) for n in names)

        assert grown(routers, "feedring_timeline_reads_total", by="node") >= 10
        assert grown(routers, "feedring_timeline_reads_total", by="router") == 0
        served = grown(["n1", "n2", "n3"], "feedring_rpc_calls_total", method="GetTimeline", code="OK")
        assert served >= 10, f"the nodes answered {served} GetTimeline calls"

    eventually(relayed, timeout_s=5.0, interval_s=0.3)


def _assert_ids(client: object, reader: str, expected: list[int]) -> None:
    assert [p.id for p in client.timeline(reader).items] == expected  # type: ignore[attr-defined]


def test_refused_and_invalid_calls_are_counted_under_their_status_code(cluster: ClusterHandle) -> None:
    before = _scrape_all(cluster)["0.0"]
    with pytest.raises(InvalidArgument):
        cluster.client(map_aware=False).timeline("no spaces allowed")
    with pytest.raises(Unauthenticated):
        cluster.client(token="").cluster_status()

    def counted() -> None:
        after = _scrape_all(cluster)["0.0"]
        for method, code in (("GetTimeline", "INVALID_ARGUMENT"), ("GetClusterStatus", "UNAUTHENTICATED")):
            grown = after.total("feedring_rpc_calls_total", method=method, code=code) - before.total(
                "feedring_rpc_calls_total", method=method, code=code
            )
            assert grown == 1, f"{method} {code}: {grown}"

    eventually(counted, timeout_s=3.0)


def test_top_once_prints_every_process_with_its_rates(
    cluster: ClusterHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    client = cluster.client(map_aware=False)  # the router's own counters are checked
    for _ in range(20):
        client.timeline("top-reader")
    assert cli_main(["--config", str(cluster.path), "top", "--once", "--interval", "0.5"]) == 0
    out = capsys.readouterr().out
    for process in ("node n1", "node n2", "node n3", "router 0.0"):
        assert process in out
    assert "calls/s" in out and "backlog" in out and "down" not in out


def test_the_shipped_dashboard_and_scrape_config_name_what_processes_export(cluster: ClusterHandle) -> None:
    exported = {name for s in _scrape_all(cluster).values() for name in s.families}
    docs = Path(__file__).resolve().parents[2] / "docs"
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(?:feedring|process)_[a-z_]+", target["expr"])
    }
    used = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in used}
    assert used and not used - exported, f"the dashboard uses metrics no process exports: {sorted(used - exported)}"
    shipped = load(Path(__file__).resolve().parents[2] / "cluster.toml")
    scrape_config = (docs / "prometheus.yml").read_text()
    assert all(f'"{t.address}"' in scrape_config for t in top.targets(shipped))
