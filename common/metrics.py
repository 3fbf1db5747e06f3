"""Prometheus metrics every feedring process serves: its RPCs, and a snapshot of its own state.

- `MethodMetrics` counts and times every RPC the process answers, by service, method and status
  code (a refused call included: common/call_guards.py times a call before anything refuses it).
- `StateSnapshot` holds the metric families a process builds from its state (delivery backlog,
  hints, keys, ...). The event loop rebuilds them every second; the HTTP thread of prometheus-client
  only reads the latest list, so it never touches the loop's dicts while they change.
- `key_caches()` reports the entries of the bounded caches of keys (they fill up to their bound as
  new keys come: memory that grows for a while, then stops; the soak subtracts it).
- `serve(address)` starts prometheus-client's HTTP server (/metrics) on the process's own port from
  cluster.toml; process RSS and CPU come with prometheus-client's default process collector.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from common.partitioning import partition_of

__all__ = [
    "MethodMetrics",
    "MetricsEndpoint",
    "StateSnapshot",
    "key_caches",
    "serve",
    "RPC_CALLS",
    "RPC_SECONDS",
    "LATENCY_BUCKETS_S",
]

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RPC_CALLS = Counter(
    "feedring_rpc_calls", "RPCs answered, by service, method and status code", ["service", "method", "code"]
)
RPC_SECONDS = Histogram(
    "feedring_rpc_seconds",
    "Time to answer an RPC, by service and method",
    ["service", "method"],
    buckets=LATENCY_BUCKETS_S,
)


def _names(full_method: str) -> tuple[str, str]:
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method or full_method


class MethodMetrics:
    """The counters and histogram of one method's calls (common/call_guards.py times each call)."""

    def __init__(self, full_method: str) -> None:
        self.labels = _names(full_method)
        self.seconds = RPC_SECONDS.labels(*self.labels)  # a label lookup per call costs more than the observation
        self._calls: dict[Any, Any] = {}

    def done(self, started: float, context: grpc.aio.ServicerContext, failed: bool) -> None:
        self.seconds.observe(time.perf_counter() - started)
        code = context.code()
        if code is None:
            code = grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK
        counter = self._calls.get(code)
        if counter is None:
            name = code.name if isinstance(code, grpc.StatusCode) else str(code)
            counter = self._calls[code] = RPC_CALLS.labels(*self.labels, name)
        counter.inc()


def key_caches(**others: int) -> Metric:
    """Entries held by this process's bounded caches of keys: partition_of in every process, plus
    `others` (name=entries)."""
    family = GaugeMetricFamily(
        "feedring_key_cache_entries", "Entries a bounded cache of keys holds (it fills to its bound)", labels=["cache"]
    )
    family.add_metric(["partition_of"], partition_of.cache_info().currsize)
    for name, entries in others.items():
        family.add_metric([name], entries)
    return family


class StateSnapshot(Collector):
    """Metric families rebuilt on the event loop by `build` every `interval_s`, served as they were
    last built (at most that old). A failing build keeps the previous families and logs once."""

    def __init__(self, build: Callable[[], Iterable[Metric]], interval_s: float = 1.0) -> None:
        self.build = build
        self.interval_s = interval_s
        self._families: list[Metric] = []
        self._failing = False

    def refresh(self) -> None:
        try:
            self._families = list(self.build())
            self._failing = False
        except Exception:
            if not self._failing:
                log.exception("metrics snapshot failed; serving the previous one")
            self._failing = True

    async def refresh_forever(self) -> None:
        while True:
            self.refresh()
            await asyncio.sleep(self.interval_s)

    def collect(self) -> Iterable[Metric]:
        return list(self._families)


def serve(address: str, snapshot: StateSnapshot) -> Callable[[], None] | None:
    """Serves /metrics on `address` (host:port); returns how to stop it, or None when it cannot
    listen (logged: a process without metrics still serves its clients)."""
    host, _, port = address.rpartition(":")
    REGISTRY.register(snapshot)
    try:
        server, thread = start_http_server(int(port), addr=host)
    except OSError as exc:
        REGISTRY.unregister(snapshot)
        log.error("metrics not served: cannot listen on %s: %s", address, exc)
        return None
    log.info("metrics at http://%s/metrics", address)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2.0)
        REGISTRY.unregister(snapshot)

    return stop


class MetricsEndpoint:
    """A process's /metrics at `address`: the families `build` makes, rebuilt on the event loop
    every second while it runs. start() and stop() are called from the loop."""

    def __init__(self, address: str, build: Callable[[], Iterable[Metric]]) -> None:
        self.address = address
        self.snapshot = StateSnapshot(build)
        self._stop_http: Callable[[], None] | None = None
        self._refresher: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.snapshot.refresh()
        self._stop_http = serve(self.address, self.snapshot)
        self._refresher = asyncio.create_task(self.snapshot.refresh_forever())

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        if self._stop_http is not None:
            await asyncio.to_thread(self._stop_http)
            self._stop_http = None
