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
