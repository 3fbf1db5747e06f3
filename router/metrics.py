"""A router worker's own state as Prometheus metric families: hot users, the hot-post cache, and the
cluster map it routes by (its RPCs are counted by common/metrics.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from common.metrics import key_caches
from router.flows import RouterFlows

__all__ = ["router_families"]


def router_families(flows: RouterFlows) -> Callable[[], Iterator[Metric]]:
    def build() -> Iterator[Metric]:
        cache, health = flows.cache, flows.storage.health
        yield GaugeMetricFamily(
            "feedring_hot_users", "Users read by fan-out on read (hot)", value=len(flows.hot.hot_now())
        )
        yield CounterMetricFamily(
            "feedring_hot_cache_hits", "Hot-post cache reads served from memory", value=cache.hits
        )
        yield CounterMetricFamily(
            "feedring_hot_cache_misses", "Hot-post cache reads that went to the nodes", value=cache.misses
        )
        yield GaugeMetricFamily("feedring_hot_cache_entries", "Hot users whose posts are cached", value=len(cache))
        yield key_caches()
        yield GaugeMetricFamily(
            "feedring_map_epoch", "Epoch of the cluster map this router routes by", value=flows.storage.map.epoch
        )
        yield GaugeMetricFamily("feedring_nodes", "Nodes in the cluster map", value=len(flows.storage.map.members))
        yield GaugeMetricFamily(
            "feedring_peers_down", "Nodes this router's failure detector thinks are down", value=len(health.suspected())
        )

    return build
