"""LevelDB compacts at idle CPU priority, so its bursts never keep a request waiting for a core.

LevelDB compacts in one background thread per process, started by its default Env at the first
compaction it schedules. On a loaded node that thread burns as much CPU as the node's event loop,
in bursts of 0.3-0.85 of a core: with three nodes on two cores, their bursts together fill the
machine, and the loops wait for a core (measured: the open-loop phase's read p99 windows of 100-300 ms
lined up with them, the loops at 0.05-0.3 of a core meanwhile; docs/performance.md, session 23).

On Linux a thread's scheduling policy passes to the threads it starts. So the store is opened, and
its first compaction scheduled, from a short-lived thread running under SCHED_IDLE: LevelDB's
thread starts there and keeps that policy. It still gets every idle cycle, but any other thread
that wakes (a request arriving at any process) preempts it at once. When compaction falls behind
anyway, LevelDB slows and then stops writes until it catches up, as it does at any priority.
Elsewhere (no SCHED_IDLE), or when the thread had been started already, the store opens as before.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import plyvel

__all__ = ["open_with_idle_compaction", "IDLE_POLICY"]

log = logging.getLogger(__name__)

IDLE_POLICY: int | None = getattr(os, "SCHED_IDLE", None)
# A key above every key a node writes (node-wide records start 0xFFFF): compacting the range it
# alone spans moves no table, but first flushes the memtable, which schedules a compaction.
_ABOVE_EVERY_KEY = b"\xff" * 9


def open_with_idle_compaction(path: str, **options: Any) -> plyvel.DB:
    """plyvel.DB(path, **options), with LevelDB's compaction thread started at idle priority."""
    if IDLE_POLICY is None:
        return plyvel.DB(path, **options)
    opened: list[plyvel.DB] = []
    failed: list[BaseException] = []

    def open_idle() -> None:
        try:
            os.sched_setscheduler(0, IDLE_POLICY, os.sched_param(0))  # this thread only (Linux)
        except OSError as exc:
            log.info("LevelDB compaction keeps the normal CPU priority (SCHED_IDLE refused: %s)", exc)
        try:
            opened.append(plyvel.DB(path, **options))
        except BaseException as exc:  # raised in the caller's thread below
            failed.append(exc)
            return
        try:
            opened[0].compact_range(start=_ABOVE_EVERY_KEY, stop=_ABOVE_EVERY_KEY)
        except plyvel.Error as exc:  # the store is open: only the priority is lost
            log.warning("LevelDB compaction may run at the normal CPU priority (the first flush failed: %s)", exc)

    thread = threading.Thread(target=open_idle, name="leveldb-open")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return opened[0]
