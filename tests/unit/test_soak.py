"""The soak's verdict (bench/soak.py): what counts as growing without bound."""

from __future__ import annotations

import math
import random

from bench.soak import KEY_CACHE_BYTES, verdict


def _rows(**series: object) -> list[dict[str, float]]:
    """One row per 10 s over an hour; each series is a function of seconds."""
    rows = []
    for i in range(1, 361):
        t = i * 10.0
        rows.append({"t_s": t} | {k.replace("__", "/"): f(t) for k, f in series.items()})  # type: ignore[operator]
    return rows


def test_levelled_memory_and_steady_latency_pass() -> None:
    rows = _rows(
        anon_mb__n1=lambda t: 150 - 60 * math.exp(-t / 300) + 2 * math.sin(t / 50),  # warms up, then flat
        fds__n1=lambda t: 40 + (t // 10) % 3,
        disk_mb__n1=lambda t: 0.02 * t + 5 * math.sin(t / 200),  # grows with the data written, steadily
        mapped_mb__n1=lambda t: 0.01 * t,  # LevelDB's mapped tables: with the data
        lag_p99_ms=lambda t: 900 + 300 * ((t // 10) % 2),
        read_p99_ms=lambda t: 40.0,
    )
    checks = verdict(rows, warmup_s=300)
    assert set(checks) == {"anon_mb/n1", "fds/n1", "disk_mb/n1", "mapped_mb/n1", "lag_p99_ms", "read_p99_ms"}
    assert all(c["bounded"] for c in checks.values()), checks


def test_a_leak_a_descriptor_leak_an_accelerating_disk_and_a_growing_lag_fail() -> None:
    rows = _rows(
        anon_mb__n1=lambda t: 150 + t / 60,  # 1 MB a minute: 1.4 GB a day
        fds__n2=lambda t: 40 + t / 100,  # a socket every 100 s
        disk_mb__n3=lambda t: 1e-5 * t * t,  # compaction falling behind
        lag_p99_ms=lambda t: 500 + t,  # the backlog grows
    )
    checks = verdict(rows, warmup_s=300)
    assert {k for k, c in checks.items() if not c["bounded"]} == {"anon_mb/n1", "fds/n2", "disk_mb/n3", "lag_p99_ms"}


def test_table_files_are_left_to_leveldb_and_short_series_are_not_judged() -> None:
    rows = _rows(table_fds__n1=lambda t: t)  # LevelDB caps its open tables itself
    assert verdict(rows, warmup_s=300) == {}
    assert verdict(_rows(anon_mb__n1=lambda t: t)[:5], warmup_s=0) == {}


def test_a_node_memory_that_grows_with_leveldb_passes_and_a_leak_beside_it_fails() -> None:
    def leveldb_rows(leak_mb_per_min: float) -> list[dict[str, float]]:
        def keys_m(t: float) -> float:
            return 0.005 * t  # 18 M keys in the hour

        def cache_mb(t: float) -> float:
            return 32 * (1 - math.exp(-t / 900))  # the block cache fills up to its bound

        return _rows(
            keys_m__n1=keys_m,
            leveldb_cache_mb__n1=cache_mb,
            # The process itself (90 MB), LevelDB's caches, its tables' filters (1.25 bytes a key).
            anon_mb__n1=lambda t: 90 + cache_mb(t) + keys_m(t) * 1.25 + leak_mb_per_min * t / 60,
        )

    held = verdict(leveldb_rows(0.0), warmup_s=300)
    assert set(held) == {"unexplained_mb/n1"} and held["unexplained_mb/n1"]["bounded"], held
    leaking = verdict(leveldb_rows(0.5), warmup_s=300)
    assert not leaking["unexplained_mb/n1"]["bounded"], leaking


def test_memory_that_wanders_passes_and_a_slow_leak_under_the_wander_fails() -> None:
    """Compaction and buffers move memory by a few MB for minutes at a time: that is not growth.
    A leak of 0.4 MB a minute (300 MB doubled in half a day) hidden under it is."""

    def wandering(leak_mb_per_min: float) -> list[dict[str, float]]:
        rng = random.Random(3)
        level = [0.0]

        def anon(t: float) -> float:
            level[0] = 0.9 * level[0] + rng.gauss(0, 1.5)  # a wander that lasts a few samples
            return 300 + 3 * math.sin(t / 400) + level[0] + leak_mb_per_min * t / 60

        return _rows(anon_mb__w=anon)

    steady = verdict(wandering(0.0), warmup_s=300)["anon_mb/w"]
    assert steady["bounded"] and steady["growth_per_day_high"] > 0, steady  # it says how loose the bound is
    leaking = verdict(wandering(0.4), warmup_s=300)["anon_mb/w"]
    assert not leaking["bounded"], leaking


def test_a_router_whose_key_cache_fills_passes_and_a_leak_beside_it_fails() -> None:
    def router_rows(leak_mb_per_min: float) -> list[dict[str, float]]:
        def entries_k(t: float) -> float:
            return 65.536 * (1 - math.exp(-t / 1800))  # new keys keep coming for an hour

        return _rows(
            key_caches_k__r=entries_k,
            anon_mb__r=lambda t: 30 + entries_k(t) * 1e3 * KEY_CACHE_BYTES / 2**20 + leak_mb_per_min * t / 60,
        )

    held = verdict(router_rows(0.0), warmup_s=300)
    assert set(held) == {"unexplained_mb/r"} and held["unexplained_mb/r"]["bounded"], held
    assert not verdict(router_rows(0.1), warmup_s=300)["unexplained_mb/r"]["bounded"]
