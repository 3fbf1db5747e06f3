"""Timeline reads against a bare gRPC echo in alternating rounds: the ratios the read targets use.

The echo baseline at the start of a run and the reads minutes later can meet a different machine:
this one is shared, and within minutes a bare echo's single-call p50 was seen anywhere from 0.44 to
0.73 ms (2026-12-06), so a ratio of two figures taken apart measured the machine's drift as much as
feedring (a run whose echo caught a slow moment read as meeting targets it did not). Here each round
times the echo and the cluster's reads back to back, single calls (p50) and many in flight (QPS),
and each figure is the median over the rounds of reads / echo, as bench/floors.py does for the relay.
"""

from __future__ import annotations

import statistics

from bench.harness import Mix, run_load, start_echo_server
from bench.stats import summary

__all__ = ["reads_against_echo"]


def reads_against_echo(
    target: str, users: int, rounds: int, seconds: float, processes: int, concurrency: int, direct: bool
) -> dict[str, float]:
    """Timeline reads through the router at `target`, or with `direct` as the map-aware client
    sends them (one hop), against a fresh echo server."""
    echo_process, echo_target = start_echo_server()
    single, qps = [], []
    try:
        for _ in range(rounds):
            echo_single = summary(run_load(echo_target, "echo", seconds, 1, 1)["echo"])
            read_single = summary(run_load(target, "feed", seconds, 1, 1, Mix(1, 0, 0), users, direct=direct)["read"])
            echo_many = summary(run_load(echo_target, "echo", seconds, processes, concurrency)["echo"], seconds)
            read_many = summary(
                run_load(target, "feed", seconds, processes, concurrency, Mix(1, 0, 0), users, direct=direct)["read"],
                seconds,
            )
            single.append(read_single["p50_ms"] / echo_single["p50_ms"])
            qps.append(read_many["qps"] / echo_many["qps"])
    finally:
        echo_process.terminate()
    return {
        "rounds": float(rounds),
        "single_p50_over_echo": statistics.median(single),
        "single_p50_over_echo_min": min(single),
        "single_p50_over_echo_max": max(single),
        "qps_over_echo": statistics.median(qps),
        "qps_over_echo_min": min(qps),
        "qps_over_echo_max": max(qps),
    }
