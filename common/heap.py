"""The garbage collector in a long-running server: what is alive once it has started stays alive as
long as the process, so collections stop walking it; and how long each collection held the process.

CPython's full collection walks every tracked container, and a node or router holds ~30,000 of them
from its imports alone (gRPC, protobuf, asyncio) plus its key caches, all alive until it exits.
Measured on 3-node clusters under 100 reads/s + 20 posts/s: a full collection came every ~25 s per
node and took 20 ms of CPU (p50; up to 51 ms, and up to 174 ms of wall time on the two busy cores),
collecting next to nothing, with the event loop held throughout. ``gc.freeze()`` after start moves
every object alive then into the permanent generation, which no collection walks: the same full
collections took 2.8 ms (p50). What is created later is collected as before.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from prometheus_client import Histogram

__all__ = ["freeze_long_lived", "GC_PAUSE"]

log = logging.getLogger(__name__)

GC_PAUSE = Histogram(
    "feedring_gc_pause_seconds",
    "How long each garbage collection held the process (and its event loop), by generation",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
_BY_GENERATION = [GC_PAUSE.labels(generation=str(g)) for g in range(3)]
_started = [0.0]


def _timed(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _BY_GENERATION[info["generation"]].observe(time.perf_counter() - _started[0])


def freeze_long_lived() -> int:
    """Collects once, exempts every surviving object from later collections and times the
    collections from now on; returns how many objects were frozen. Called once a server has started."""
    gc.collect()
    gc.freeze()
    if _timed not in gc.callbacks:
        gc.callbacks.append(_timed)
    frozen = gc.get_freeze_count()
    log.info("objects alive at start exempted from garbage collection count=%d", frozen)
    return frozen
