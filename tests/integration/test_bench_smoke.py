"""`python -m bench --smoke` (every phase at its smallest) runs end to end, so the benchmark never
rots. Not a timed test: it asserts the figures exist and are sane, never that they are fast."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from ops.local_cluster import PROJECT_ROOT


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_smoke_benchmark_produces_every_figure(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--no-plot",
            "--out",
            str(tmp_path),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (json_path,) = tmp_path.glob("*.json")
    r = json.loads(json_path.read_text())
    assert r["echo"]["qps"] > 0 and r["plyvel_puts_per_s"] > 0
    assert r["relay_floor"]["p50_over_echo"] > 0 and r["relay_floor"]["qps_over_echo"] > 0  # the two-hop floor
    # The page floor: the Feed API answering a fixed page was read (timeline reads, not echoes).
    assert r["relay_floor"]["page_p50_over_echo"] > 0 and r["relay_floor"]["page_qps_over_echo"] > 0
    assert r["relay_floor"]["page_spread_qps_over_echo"] > 0
    floors = r["store_floors"]
    assert floors["insert_inbox_per_s"] > 0 and floors["minimal_edge_checked_per_s"] > 0
    read = r["workload"]["read"]
    assert read["qps"] > 0 and 0 < read["p50_ms"] <= read["p99_ms"]
    assert r["plain_readers"] > 0 and r["read_only_plain"]["qps"] > 0 and r["read_single_plain"]["p50_ms"] > 0
    assert set(r["post_ack"]) == {"10", "1K", "10K"} and r["post_ack"]["10K"]["hot"] == 1.0
    assert r["delivery"]["inbox_entries_per_s"] > 0 and r["delivery"]["lag_p50_ms"] > 0
    for method in ("visible", "visible_thread_pool"):  # every follower saw every probe post
        assert set(r[method]) == {"10", "200"}, method
        assert all(v.get("unseen", 0) == 0 and 0 < v["p50_ms"] <= v["p99_ms"] < 10_000 for v in r[method].values())
    for v in r["visible"].values():  # the bracket: no later than the reads that showed it, no earlier than a miss
        assert 0 <= v["lower_bound_p50_ms"] <= v["p50_ms"] and 0 <= v["first_reads_showed_it"] <= 1, v
    for label in ("plain N=100", "hot N=100"):  # every watcher saw every post
        watch = r["watch"][label]
        assert watch["missed"] == 0 and 0 < watch["p50_ms"] <= watch["p99_ms"], (label, watch)
    assert r["salting"]["S=1"]["max_over_mean"] > r["salting"]["S=8"]["max_over_mean"]
    assert r["rebalance"]["keys_moved"] > 0 and r["rebalance"]["partitions_moved"] > 0
    assert all(not (isinstance(t["measured"], float) and math.isnan(t["measured"])) for t in r["targets"])
    rep = r["replication"]
    assert rep["rf1"]["read_qps"] > 0 and rep["rf3"]["read_qps"] > 0 and rep["rf3"]["inboxes_per_s"] > 0
    assert rep["rf3"]["catch_up_s"] > 0 and rep["rf3"]["ops_while_down"] > 0
    mixed = r["mixed_open"]
    assert mixed["read"]["count"] > 0 and mixed["fanout"]["records"] > 0 and mixed["fanout"]["lag_p99_ms"] > 0
    assert mixed["cpu_share"] and all(v >= 0 for v in mixed["cpu_share"].values())
    assert r["reads_open"]["read"]["count"] > 0
    for paired in (r["router_vs_echo"], r["direct_vs_echo"]):
        assert paired["rounds"] >= 1 and paired["single_p50_over_echo"] > 0 and paired["qps_over_echo"] > 0
    direct = r["mixed_open_direct"]
    assert direct["read"]["count"] > 0 and not direct["errors"]
    assert set(r["drain_s"]) == {"after_closed_loop_mixed", "after_open_loop_mixed", "after_open_loop_mixed_direct"}
    away = r["inactive"]
    assert away["inactive_skipped"]["skipped_per_post"] > 0 and away["all_active"]["skipped_per_post"] == 0
    assert away["inactive_skipped"]["entries_per_post"] < away["all_active"]["entries_per_post"]
    assert all(v["count"] == 20 and v["p50_ms"] > 0 for v in away["returning_first_read"].values())
    stress = r["stress"]
    assert stress["steps"] and all(step["inbox_writes_per_s"] > 0 for step in stress["steps"])
    assert "targets" in result.stdout
