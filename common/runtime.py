"""How a server process runs its event loop: the process-level tuning the benchmark chose.

`FEEDRING_TUNING` (a comma list: uvloop, gc, opt_latency, opt_throughput) turns experiments on for
`python -m bench.grpc_options`, which measures each against the defaults in one run. None is on by
default: none bought a measurable gain (README "Performance").
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
from collections.abc import Callable, Coroutine
from typing import Any


def tuning() -> set[str]:
    return {t.strip() for t in os.environ.get("FEEDRING_TUNING", "").split(",") if t.strip()}


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    chosen = tuning()
    if "gc" in chosen:
        # Fewer young-generation collections: a server allocates many short-lived objects per call.
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
    if "uvloop" in chosen:
        importlib.import_module("uvloop").run(main())  # the bench extra installs it
        return
    asyncio.run(main())


def grpc_options() -> list[tuple[str, object]]:
    """Extra channel and server arguments under test."""
    chosen = tuning()
    for target in ("latency", "throughput"):
        if f"opt_{target}" in chosen:
            return [("grpc.optimization_target", target)]
    return []
