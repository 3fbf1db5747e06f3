"""Skewed clocks on the in-memory twin: a causally later write wins whatever the coordinators' wall
clocks say (node/replication.py stamps again above a replica's newer version), and a node tells how
far its peers' clocks are off (node/clock_skew.py)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from node import keys
from node.clock_skew import ClockSkew
from node.versioned import is_alive
from tests.inmem_cluster import InmemCluster, make_config


def _users_placed(cluster: InmemCluster, order: tuple[str, ...], count: int) -> list[str]:
    """Users whose partition's replicas are `order`, first to last (the router tries them so)."""
    node = cluster.nodes["n1"]
    found = []
    for i in itertools.count():
        name = f"user{i}"
        if node.ownership.map.replicas(node.data.partition(name)) == order:
            found.append(name)
            if len(found) == count:
                return found
    raise AssertionError("unreachable")


def _alive_on_each(cluster: InmemCluster, family: bytes, user: str, other: str) -> dict[str, bool]:
    out = {}
    for node_id, node in cluster.nodes.items():
        part = node.data.partition(user)
        out[node_id] = is_alive(node.store.get(keys.edge_key(part, family, user, other)))
    return out


@pytest.mark.parametrize("skew_s", [5.0, -5.0])
def test_an_acknowledged_unfollow_and_unmute_stay_done_after_a_coordinator_with_a_clock_behind(skew_s: float) -> None:
    """A follow and a mute coordinated by n1, n3 down; then n1 down, n3 back: n3 coordinates the
    unfollow and the unmute with a clock `skew_s` behind n1's (or ahead of it: then nothing needs
    stamping again), never having seen the follow's version. Every replica ends with the last
    acknowledged state, also after n1 comes back and its hints replay."""

    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3, partitions=16, replication_factor=3))
        fast = cluster.nodes["n1"].data.clock
        fast.wall = lambda: time.time() + skew_s
        ann, bob = _users_placed(cluster, ("n1", "n3", "n2"), 2)
        router = cluster.router()
        cluster.down("n3")
        await router.follows.follow(ann, bob)
        await router.relations.mute(ann, bob, True)
        cluster.down("n1")
        cluster.up("n3")
        assert await router.follows.unfollow(ann, bob)
        await router.relations.mute(ann, bob, False)
        cluster.up("n1")
        await cluster.replay_hints()
        following = _alive_on_each(cluster, keys.FOLLOWING, ann, bob)
        followers = _alive_on_each(cluster, keys.FOLLOWERS, bob, ann)
        muted = _alive_on_each(cluster, keys.MUTES, ann, bob)
        assert following == followers == muted == {"n1": False, "n2": False, "n3": False}
        restamped = sum(n.replicator.restamped for n in cluster.nodes.values())
        assert (restamped > 0) == (skew_s > 0)  # only a clock behind needs it
        # And again the other way: a follow through the slow node after an unfollow by the fast one.
        cluster.down("n3")
        await router.follows.follow(ann, bob)
        assert await router.follows.unfollow(ann, bob)
        cluster.down("n1")
        cluster.up("n3")
        await cluster.probe()  # the nodes' failure detectors see n3 back
        await router.follows.follow(ann, bob)
        cluster.up("n1")
        await cluster.replay_hints()
        assert _alive_on_each(cluster, keys.FOLLOWING, ann, bob) == {"n1": True, "n2": True, "n3": True}
        await cluster.close()

    asyncio.run(scenario())


def test_clock_offsets_come_from_write_replies_and_a_skew_past_the_limit_is_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    skew = ClockSkew(max_skew_ms=1000)
    with caplog.at_level(logging.WARNING, logger="node.clock_skew"):
        skew.note("n2", sent_ms=10_000, peer_ms=10_105, received_ms=10_010)  # 100 ms ahead, in bounds
        skew.note("n3", sent_ms=10_000, peer_ms=4_505, received_ms=10_010)  # 5.5 s behind us
        skew.note("n3", sent_ms=11_000, peer_ms=5_505, received_ms=11_010)
        skew.note("n4", sent_ms=10_000, peer_ms=99_999, received_ms=11_000)  # a 1 s round trip says nothing
    assert skew.offsets_ms() == {"n2": 100, "n3": -5500}
    assert skew.skewed() == ["n3"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "this node's clock is 5500 ms ahead of peer n3" in warnings[0]


def test_a_node_reports_its_peers_clock_offsets_in_status() -> None:
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=3, partitions=16, replication_factor=3))
        router = cluster.router()
        await router.follows.follow("ann", "bob")
        await cluster.settle(router)
        offsets = {n: node.replicator.clock_skew.offsets_ms() for n, node in cluster.nodes.items()}
        # One process: every offset is within the round trip; each coordinator heard from both peers.
        assert any(len(o) == 2 for o in offsets.values())
        assert all(abs(ms) < 250 for o in offsets.values() for ms in o.values())
        await cluster.close()

    asyncio.run(scenario())
