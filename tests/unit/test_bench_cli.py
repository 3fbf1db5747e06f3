"""`python -m bench` without matplotlib says so before it runs, not after a 20-minute run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import bench.__main__ as bench_main


def test_a_bench_that_would_plot_without_matplotlib_stops_at_once_and_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert bench_main.main(["--smoke", "--out", str(tmp_path)]) == 2
    assert "--no-plot" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing was started


def test_store_growth_reports_each_setting_as_its_store_grows() -> None:
    from bench.store_growth import grow

    rows = grow((1, 1), 0.012, check_every=10)  # a 1 MiB memtable flushes to tables as it fills
    assert rows and rows[-1]["gb"] >= 0.012 and rows[-1]["entries"] > 0
    assert all(r["entries_per_s"] > 0 and r["read_p99_ms"] >= r["read_p50_ms"] for r in rows)
    assert rows[-1]["tables"] >= 1


def test_store_growth_refuses_settings_it_cannot_read(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.store_growth import main

    with pytest.raises(SystemExit):
        main(["--settings", "32"])
    assert "two memtable/table pairs" in capsys.readouterr().err
