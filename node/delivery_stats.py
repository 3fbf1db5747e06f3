"""What a node's deliveries have done: inbox writes and their rate, retries, and lag (post written ->
in every follower's inbox), for status and metrics."""

from __future__ import annotations

import bisect
import time
from collections import deque

from node.delivery_log import INSERT
from protos import storage_pb2

__all__ = ["DeliveryMetrics", "LAG_BUCKETS_MS"]

_RATE_WINDOW_S = 10.0
_LAG_WINDOW_S = 30.0  # delivery lag is reported over the records finished this recently
_LAG_MAX_SAMPLES = 100_000
# Bucket bounds of the cumulative lag histogram (ms; the last is +Inf).
LAG_BUCKETS_MS = (
    *(2, 5, 10, 25, 50, 100, 250, 500, 750, 1_000, 1_500, 2_000, 3_000, 4_000, 5_000, 7_500),
    *(10_000, 15_000, 20_000, 30_000, 60_000, 120_000, float("inf")),
)


class DeliveryMetrics:
    def __init__(self) -> None:
        self.inbox_writes = 0  # entries inserted or removed by deliveries since start
        self.retries = 0  # batches retried
        self._samples: deque[tuple[float, int]] = deque()
        self._lags: deque[tuple[float, float]] = deque()  # (finished at, ms from the post to all inboxes)
        self._lag_buckets = [0] * len(LAG_BUCKETS_MS)

    def wrote(self, entries: int) -> None:
        """`entries` inbox writes reached a quorum of each consumer's replicas."""
        self.inbox_writes += entries
        self._sample()

    def finished(self, record: storage_pb2.Delivery) -> None:
        """A record is done: its lag counts (inserts only: what a reader waits for)."""
        if record.kind == INSERT and record.created_at_ms:
            now = time.monotonic()
            lag_ms = max(time.time() * 1000 - record.created_at_ms, 0.0)
            self._lags.append((now, lag_ms))
            self._lag_buckets[bisect.bisect_left(LAG_BUCKETS_MS, lag_ms)] += 1
            self._expire_lags(now)

    def stats(self, records: int, oldest_age_s: float, percentiles: bool = True) -> storage_pb2.DeliveryStats:
        """`percentiles` False skips sorting up to _LAG_MAX_SAMPLES lags (milliseconds of the event
        loop): the metrics snapshot, taken every second, exports the lag histogram instead."""
        self._sample()
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        self._expire_lags(time.monotonic())
        lags = sorted(lag for _, lag in self._lags) if percentiles else []
        return storage_pb2.DeliveryStats(
            lag_p50_ms=_percentile(lags, 0.50),
            lag_p99_ms=_percentile(lags, 0.99),
            lag_samples=len(self._lags),
            lag_bucket_le_ms=LAG_BUCKETS_MS,
            lag_bucket_counts=self._lag_buckets,
            records=records,
            oldest_age_s=oldest_age_s,
            inbox_writes=self.inbox_writes,
            inbox_writes_per_s=(n1 - n0) / (t1 - t0) if t1 > t0 else 0.0,
            retries=self.retries,
        )

    def _expire_lags(self, now: float) -> None:
        while self._lags and (now - self._lags[0][0] > _LAG_WINDOW_S or len(self._lags) > _LAG_MAX_SAMPLES):
            self._lags.popleft()

    def _sample(self) -> None:
        now = time.monotonic()
        if not self._samples or now - self._samples[-1][0] >= 0.5:
            self._samples.append((now, self.inbox_writes))
        while len(self._samples) > 2 and now - self._samples[0][0] > _RATE_WINDOW_S:
            self._samples.popleft()


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0
