"""A node's own state as Prometheus metric families, built from its NodeStatus (what `feedring
status` shows) plus the size of its LevelDB directory. Counters since start are counters here too."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from common.metrics import key_caches
from feed.cache_metrics import hot_cache_families
from feed.hot_cache import HotPostCache
from node.timeline_cache import TimelineCache
from protos import storage_pb2

__all__ = ["node_families"]


def directory_bytes(path: Path) -> int:
    total = 0
    with os.scandir(path) as entries:  # LevelDB keeps its files flat in one directory
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:  # a table compacted away between the listing and the stat
                continue
    return total


def node_families(
    status: Callable[[], storage_pb2.NodeStatus],
    data_dir: Path,
    cached_prefixes: Callable[[], int] = lambda: 0,
    timeline_cache: TimelineCache | None = None,
    hot_cache: Callable[[], HotPostCache | None] = lambda: None,
) -> Callable[[], Iterator[Metric]]:
    """`hot_cache`: the hot-post cache of the node's Feed API, once it serves one."""

    def build() -> Iterator[Metric]:
        s = status()
        yield key_caches(inbox_prefixes=cached_prefixes())
        if (cache := hot_cache()) is not None:
            yield from hot_cache_families(cache)
        if timeline_cache is not None:
            yield GaugeMetricFamily(
                "feedring_timeline_cache_pages", "Timelines' first pages kept in memory", value=len(timeline_cache)
            )
            yield CounterMetricFamily(
                "feedring_timeline_cache_hits", "First-page reads answered from memory", value=timeline_cache.hits
            )
            yield CounterMetricFamily(
                "feedring_timeline_cache_misses", "First-page reads built from the store", value=timeline_cache.misses
            )
        d, r = s.delivery, s.replication
        yield GaugeMetricFamily("feedring_node_epoch", "Epoch of the cluster map this node holds", value=s.epoch)
        yield GaugeMetricFamily(
            "feedring_partitions_owned", "Partitions this node holds a replica of", value=s.partitions_owned
        )
        keys = GaugeMetricFamily("feedring_keys", "Keys stored, by family", labels=["family"])
        for family, count in sorted(s.keys_by_family.items()):
            keys.add_metric([family], count)
        yield keys
        yield GaugeMetricFamily(
            "feedring_leveldb_bytes", "Size of the node's LevelDB files on disk", value=directory_bytes(data_dir)
        )
        yield GaugeMetricFamily(
            "feedring_leveldb_cache_bytes",
            "Memory LevelDB reports holding: its block cache (at most 32 MiB) and memtables",
            value=s.leveldb_cache_bytes,
        )
        yield GaugeMetricFamily(
            "feedring_delivery_records", "Delivery records outstanding (fan-out backlog)", value=d.records
        )
        yield GaugeMetricFamily(
            "feedring_delivery_oldest_age_seconds",
            "Age of the oldest outstanding delivery record this node drives (looked up at most every 10 s)",
            value=d.oldest_age_s,
        )
        yield CounterMetricFamily(
            "feedring_delivery_inbox_writes", "Inbox entries written or removed by deliveries", value=d.inbox_writes
        )
        yield CounterMetricFamily("feedring_delivery_retries", "Delivery batches retried", value=d.retries)
        yield CounterMetricFamily(
            "feedring_fanout_busy_seconds", "Time spent applying fan-out inbox writes", value=d.fanout_busy_s
        )
        yield CounterMetricFamily(
            "feedring_fanout_paused_seconds", "Time fan-out stood back for timeline reads", value=d.fanout_paused_s
        )
        yield GaugeMetricFamily(
            "feedring_disk_write_refused",
            "1 once the disk refused a write (full, read-only)",
            value=int(bool(s.disk_error)),
        )
        yield GaugeMetricFamily(
            "feedring_inactive_readers",
            "Readers who have not read for fanout.inactive_after: fan-out skips them",
            value=d.inactive_readers,
        )
        yield CounterMetricFamily(
            "feedring_fanout_skipped_entries",
            "Inbox entries not written for inactive readers",
            value=d.inbox_entries_skipped,
        )
        # Bucket counts are cumulative over time but per bucket: Prometheus wants them summed upwards.
        buckets, running = [], 0
        for le_ms, count in zip(d.lag_bucket_le_ms, d.lag_bucket_counts, strict=False):
            running += count
            buckets.append(("+Inf" if le_ms == float("inf") else repr(le_ms / 1000), running))
        if buckets:
            yield HistogramMetricFamily(
                "feedring_delivery_lag_seconds",
                "Post stored -> in every follower's inbox, per finished record",
                buckets=buckets,
            )
        yield GaugeMetricFamily(
            "feedring_hints", "Writes held for replicas that missed them, all targets", value=r.hints
        )
        hints = GaugeMetricFamily(
            "feedring_hints_held", "Writes held for a replica that missed them, by target", labels=["target"]
        )
        for target, count in sorted(r.hints_by_target.items()):
            hints.add_metric([target], count)
        yield hints
        yield CounterMetricFamily("feedring_hints_replayed", "Hints delivered to their replica", value=r.hints_replayed)
        yield CounterMetricFamily(
            "feedring_hints_expired", "Hints dropped as older than replication.max_hint_age", value=r.hints_expired
        )
        yield CounterMetricFamily(
            "feedring_quorum_failures", "Writes that could not reach write_quorum", value=r.quorum_failures
        )
        yield CounterMetricFamily(
            "feedring_writes_restamped",
            "Versioned writes stamped again above a replica's newer version (a skewed clock or a concurrent write)",
            value=r.writes_restamped,
        )
        yield CounterMetricFamily(
            "feedring_tombstones_collected",
            "Post tombstones and dead edges collected: older than gc_grace and seen in sync on every replica",
            value=r.tombstones_collected,
        )
        offsets = GaugeMetricFamily(
            "feedring_peer_clock_offset_seconds",
            "A peer's wall clock minus this node's (from write replies)",
            labels=["peer"],
        )
        for peer, offset_ms in sorted(r.clock_offset_ms.items()):
            offsets.add_metric([peer], offset_ms / 1000)
        yield offsets
        yield GaugeMetricFamily(
            "feedring_clock_skewed_peers",
            "Peers whose wall clock is further from this node's than replication.max_clock_skew",
            value=sum(1 for o in r.clock_offset_ms.values() if r.max_clock_skew_ms and abs(o) > r.max_clock_skew_ms),
        )
        yield GaugeMetricFamily("feedring_repair_running", "1 while an anti-entropy pass runs", value=int(r.repairing))
        yield CounterMetricFamily("feedring_repair_keys", "Entries merged in or sent by repair", value=r.keys_repaired)
        yield GaugeMetricFamily(
            "feedring_repair_partitions_out_of_sync",
            "Partitions the last repair pass found different",
            value=r.partitions_out_of_sync,
        )
        yield GaugeMetricFamily(
            "feedring_repair_last_pass_timestamp_seconds",
            "When the last repair pass ended (0: none)",
            value=r.last_repair_ms / 1000,
        )
        yield GaugeMetricFamily(
            "feedring_peers_down", "Peers this node's failure detector thinks are down", value=len(r.peers_down)
        )
        yield GaugeMetricFamily(
            "feedring_catching_up", "1 while a restarted node waits for its hints", value=int(r.catching_up)
        )

    return build
