"""A router worker's own state as Prometheus metric families: hot users, the hot-post cache, the
timeline reads it relayed to nodes, and the cluster map it routes by (its RPCs are counted by
common/metrics.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from common.metrics import key_caches
from feed.cache_metrics import hot_cache_families
from router.flows import RouterFlows
from router.read_relay import ReadRelay

__all__ = ["router_families"]


def router_families(flows: RouterFlows, relay: ReadRelay | None = None) -> Callable[[], Iterator[Metric]]:
    def build() -> Iterator[Metric]:
        cache, health = flows.cache, flows.storage.health
        yield GaugeMetricFamily(
            "feedring_hot_users", "Users read by fan-out on read (hot)", value=len(flows.hot.hot_now())
        )
        yield from hot_cache_families(cache)
        if relay is not None:
            reads = CounterMetricFamily(
                "feedring_timeline_reads",
                "Timeline reads: relayed to a node that coordinates them, or read by this router (no node answered)",
                labels=["by"],
            )
            reads.add_metric(["node"], relay.relayed)
            reads.add_metric(["router"], relay.fell_back)
            yield reads
        yield key_caches()
        yield GaugeMetricFamily(
            "feedring_map_epoch", "Epoch of the cluster map this router routes by", value=flows.storage.map.epoch
        )
        yield GaugeMetricFamily("feedring_nodes", "Nodes in the cluster map", value=len(flows.storage.map.members))
        yield GaugeMetricFamily(
            "feedring_peers_down", "Nodes this router's failure detector thinks are down", value=len(health.suspected())
        )

    return build
