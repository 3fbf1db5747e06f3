"""What holds a server's event loop (common/loop_watch.py): a stall is counted once, and its report
names the code that held the loop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from common.loop_watch import LOOP_STALLS, LoopWatch


def a_long_scan_on_the_loop() -> None:
    time.sleep(0.35)  # stands for a store scan run on the event loop


def test_a_held_loop_is_counted_once_and_reported_with_what_held_it(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> LoopWatch:
        watch = LoopWatch("node n9", report_after_s=0.1)
        watch.start()
        await asyncio.sleep(0.2)  # quiet: ticks on time
        assert watch.stalls == 0
        a_long_scan_on_the_loop()
        await asyncio.sleep(0.2)
        await watch.stop()
        return watch

    before = LOOP_STALLS._value.get()
    with caplog.at_level(logging.WARNING, logger="common.loop_watch"):
        watch = asyncio.run(scenario())
    assert watch.stalls == 1 and LOOP_STALLS._value.get() == before + 1
    assert watch.longest_s >= 0.3
    (report,) = [r.getMessage() for r in caplog.records]
    assert "node n9" in report and "a_long_scan_on_the_loop" in report
