"""Event-loop stalls: how late a server's loop answers, and what held it when it was held long.

Every read, write and fan-out slice of a node (and every call a router relays) runs on one asyncio
loop; anything that holds it — a long store scan, a LevelDB write waiting out a compaction, a big
batch applied in one step — delays every request behind it, which shows in the tail latency and
nowhere else. The loop marks a tick every TICK_S; the lateness of each tick goes to
`feedring_event_loop_lag_seconds`. A thread looks at the last tick every TICK_S too: when the loop has
not ticked for `report_after_s`, it logs the loop thread's stack (what is holding it, once per stall,
at most one report every REPORT_EVERY_S) and counts the stall. Cheap: two wake-ups every TICK_S.
(Measured with this method on a loaded node under the bench's open-loop workload: the hot
registry's listing scan, the delivery log's scans and 16-inbox trim slices were its longest stalls.)
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

from prometheus_client import Counter, Histogram

__all__ = ["LoopWatch", "LOOP_LAG", "LOOP_STALLS", "TICK_S"]

log = logging.getLogger(__name__)

TICK_S = 0.05
REPORT_EVERY_S = 10.0

LOOP_LAG = Histogram(
    "feedring_event_loop_lag_seconds",
    "How late the event loop ran a timer due every 50 ms (time it was held by other work)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
LOOP_STALLS = Counter(
    "feedring_event_loop_stalls", "Times the event loop was held longer than the stall threshold (default 100 ms)"
)


class LoopWatch:
    def __init__(self, name: str, report_after_s: float = 0.1) -> None:
        self.name = name  # the process, in the log line
        self.report_after_s = report_after_s
        self.stalls = 0
        self.longest_s = 0.0
        self._last_tick = time.monotonic()
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """From the loop: the ticker on it, the watcher in its own thread."""
        self._loop_thread = threading.get_ident()
        self._last_tick = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._tick())
        self._thread = threading.Thread(target=self._watch, name="loop-watch", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 2 * TICK_S + 1.0)

    async def _tick(self) -> None:
        while True:
            due = time.monotonic() + TICK_S
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            self._last_tick = now
            late = max(now - due, 0.0)
            LOOP_LAG.observe(late)
            self.longest_s = max(self.longest_s, late)

    def _watch(self) -> None:
        reported_tick = 0.0  # the tick of the stall reported last: one report per stall
        last_report = -REPORT_EVERY_S
        while not self._stop.wait(TICK_S):
            tick = self._last_tick
            held = time.monotonic() - tick - TICK_S
            if held < self.report_after_s or tick == reported_tick:
                continue
            reported_tick = tick
            self.stalls += 1
            LOOP_STALLS.inc()
            if time.monotonic() - last_report < REPORT_EVERY_S:
                continue
            last_report = time.monotonic()
            frame = sys._current_frames().get(self._loop_thread)
            where = "".join(traceback.format_stack(frame, limit=12)) if frame is not None else "(no frame)\n"
            log.warning(
                "event loop held for %.0f ms so far process=%s (every request waits behind it); it is at:\n%s",
                held * 1000,
                self.name,
                where.rstrip(),
            )
