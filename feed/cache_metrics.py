"""The hot-post cache as Prometheus metric families, for whichever process's Feed API reads through
it: a router's (its fallback reads, watch streams) and each node's (the timeline reads it coordinates,
routers' relayed reads included: router/read_relay.py)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from feed.hot_cache import HotPostCache

__all__ = ["hot_cache_families"]


def hot_cache_families(cache: HotPostCache) -> Iterator[Metric]:
    yield CounterMetricFamily("feedring_hot_cache_hits", "Hot-post cache reads served from memory", value=cache.hits)
    yield CounterMetricFamily(
        "feedring_hot_cache_misses", "Hot-post cache reads that went to the nodes", value=cache.misses
    )
    yield GaugeMetricFamily("feedring_hot_cache_entries", "Hot users whose posts are cached", value=len(cache))
