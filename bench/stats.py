"""Latency summaries."""

from __future__ import annotations

__all__ = ["percentile", "summary"]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def summary(latencies_s: list[float], seconds: float | None = None) -> dict[str, float]:
    values = sorted(latencies_s)
    out = {
        "count": float(len(values)),
        "p50_ms": percentile(values, 0.50) * 1000,
        "p95_ms": percentile(values, 0.95) * 1000,
        "p99_ms": percentile(values, 0.99) * 1000,
    }
    if seconds:
        out["qps"] = len(values) / seconds
    return out
