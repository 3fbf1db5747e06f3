"""The capacity model's arithmetic on a fixed bench result (bench/capacity.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.capacity import Load, main, model, quietest_bench

BENCH = {
    "machine": "x86_64, 2 cores, 24 GiB, Python 3.11.7",
    "read_only": {"qps": 1000.0},
    "replication": {"rf3": {"inboxes_per_s": 20_000.0}},
    "stress": {"sustained": {"cpu_share": {"n1": 0.5, "n2": 0.4, "router-0/0": 0.1}}},
    "big_node": {"entries": 5e6, "rss_mb": 100.0},
    "router_rss_mb": {"after_all_phases": 90.0},
}


def test_the_model_turns_per_core_costs_into_processes_hosts_disks_and_memory() -> None:
    cap = model(BENCH, Load())
    m, d = cap.measured, cap.derived
    assert m["CPU ms per timeline read"] == pytest.approx(2.0)  # 2 cores / 1,000 reads/s
    assert m["CPU µs per follower delivery (3 replica writes)"] == pytest.approx(100.0)
    assert d["cores for timeline reads"] == pytest.approx(600.0)  # 300K reads/s x 2 ms
    assert d["cores for fan-out at peak"] == pytest.approx(240.0)  # 12K posts/s x 200 followers x 100 µs
    # 840 cores of work at most half busy: 1,680 cores, 10% of them routers.
    assert d["router processes (1 core each)"] == 168
    assert d["node processes (1 core each)"] == 1512
    assert d["node hosts"] == 95 and d["router hosts"] == 11
    assert d["inbox entries stored, all replicas (billions)"] == pytest.approx(720.0)  # 300M x 800 x 3
    assert d["disk, all replicas (TB)"] == pytest.approx(144.0)  # x 200 bytes
    assert d["disks (2 TB; at least one per node host)"] == 95  # 72 would hold it; one per host
    assert d["node memory, GB each (scaled by entries)"] == pytest.approx(20 * 720e3 / 1512 / 1000)
    assert any("bytes per stored inbox entry: 200 (assumed" in a for a in cap.assumptions)


def test_the_command_reads_a_bench_file_and_prints_the_assumptions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bench-full-2026-01-01.json"
    path.write_text(json.dumps(BENCH))
    assert main(["--bench", str(path)]) == 0
    out = capsys.readouterr().out
    assert "node processes" in out and "assumptions:" in out and "300,000 timeline reads/s" in out
    assert main(["--bench", str(tmp_path / "absent.json")]) == 2


def test_the_default_run_is_the_one_whose_echo_was_fastest(tmp_path: Path) -> None:
    for day, echo in (("01", 0.44), ("02", 0.69), ("03", 0.50)):
        (tmp_path / f"bench-full-2026-12-{day}.json").write_text(json.dumps({**BENCH, "echo_single": {"p50_ms": echo}}))
    assert quietest_bench(tmp_path).name == "bench-full-2026-12-01.json"
