"""`feedring top`: a live view of the whole cluster, from every process's Prometheus /metrics.

Each refresh scrapes every process listed in the cluster file (nodes' and router workers' `metrics`
addresses) and turns the difference from the previous scrape into rates and latency percentiles:
per process its calls/s, errors/s, p99, CPU and memory, and on nodes the fan-out backlog, delivery
lag p99, inbox writes/s, hints held, keys and disk; then the busiest methods cluster-wide.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from common.config import ClusterConfig

__all__ = ["Target", "Scrape", "targets", "scrape", "render", "run"]


@dataclass(frozen=True)
class Target:
    role: str  # "node" or "router"
    name: str  # node id, or router id.worker
    address: str  # host:port of /metrics


@dataclass
class Scrape:
    target: Target
    at: float
    error: str = ""
    # sample name -> list of (labels, value)
    samples: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=lambda: defaultdict(list))
    families: set[str] = field(default_factory=set)  # names of every family served, even those without samples

    def total(self, name: str, **match: str) -> float:
        return sum(v for labels, v in self.samples.get(name, ()) if all(labels.get(k) == m for k, m in match.items()))

    def has(self, name: str) -> bool:
        return name in self.samples


def targets(config: ClusterConfig) -> list[Target]:
    out = [Target("node", n.id, n.metrics) for n in config.nodes if n.metrics]
    for r in config.routers:
        out += [Target("router", f"{r.id}.{w}", r.metrics_address(w)) for w in range(r.workers) if r.metrics]
    return out


def scrape(target: Target, timeout_s: float = 2.0) -> Scrape:
    result = Scrape(target, time.monotonic())
    try:
        with urllib.request.urlopen(f"http://{target.address}/metrics", timeout=timeout_s) as reply:
            text = reply.read().decode("utf-8")
    except (urllib.error.URLError, OSError) as exc:
        result.error = str(getattr(exc, "reason", exc))
        return result
    for family in text_string_to_metric_families(text):
        result.families.add(family.name)
        for sample in family.samples:
            result.samples[sample.name].append((dict(sample.labels), float(sample.value)))
    return result


def _rate(now: Scrape, before: Scrape | None, name: str, **match: str) -> float | None:
    if before is None or before.error or now.at <= before.at:
        return None
    return max(now.total(name, **match) - before.total(name, **match), 0.0) / (now.at - before.at)


def _buckets(s: Scrape, name: str, **match: str) -> dict[float, float]:
    out: dict[float, float] = defaultdict(float)
    for labels, value in s.samples.get(f"{name}_bucket", ()):
        if all(labels.get(k) == m for k, m in match.items()):
            out[float(labels["le"])] += value
    return out


def quantile(now: Scrape, before: Scrape | None, name: str, q: float, **match: str) -> float | None:
    """The q-quantile (upper bucket bound) of the observations between two scrapes; None if none."""
    if before is None or before.error:
        return None
    old = _buckets(before, name, **match)
    cumulative = sorted((le, count - old.get(le, 0.0)) for le, count in _buckets(now, name, **match).items())
    if not cumulative or cumulative[-1][1] <= 0:
        return None
    wanted = q * cumulative[-1][1]
    return next(le for le, count in cumulative if count >= wanted)


def _fmt(value: float | None, unit: str = "", scale: float = 1.0, digits: int = 0) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "> max"
    return f"{value * scale:,.{digits}f}{unit}"


def render(now: list[Scrape], before: dict[str, Scrape]) -> Group:
    procs = Table(title="feedring top: processes", title_justify="left")
    for column in ("process", "metrics at", "calls/s", "errors/s", "p99", "CPU", "RSS"):
        procs.add_column(column, justify="left" if column in ("process", "metrics at") else "right")
    for column in ("backlog", "lag p99", "inbox/s", "hints", "keys", "disk"):
        procs.add_column(column, justify="right")
    methods: dict[tuple[str, str], float] = defaultdict(float)
    for s in now:
        prev = before.get(s.target.address)
        label = f"{s.target.role} {s.target.name}"
        if s.error:
            procs.add_row(label, s.target.address, f"[red]down: {s.error}[/red]")
            continue
        calls = _rate(s, prev, "feedring_rpc_calls_total")
        errors = None if calls is None else calls - (_rate(s, prev, "feedring_rpc_calls_total", code="OK") or 0.0)
        node = s.target.role == "node"
        hints = s.total("feedring_hints")
        procs.add_row(
            label,
            s.target.address,
            _fmt(calls, digits=1),
            _fmt(errors, digits=1),
            _fmt(quantile(s, prev, "feedring_rpc_seconds", 0.99), " ms", 1000, 1),
            _fmt(_rate(s, prev, "process_cpu_seconds_total"), "%", 100),
            _fmt(s.total("process_resident_memory_bytes"), " MB", 1e-6),
            _fmt(s.total("feedring_delivery_records")) if node else "",
            _fmt(quantile(s, prev, "feedring_delivery_lag_seconds", 0.99), " ms", 1000) if node else "",
            _fmt(_rate(s, prev, "feedring_delivery_inbox_writes_total")) if node else "",
            (f"[yellow]{hints:,.0f}[/yellow]" if hints else "0") if node else "",
            _fmt(s.total("feedring_keys")) if node else "",
            _fmt(s.total("feedring_leveldb_bytes"), " MB", 1e-6, 1) if node else "",
        )
        if prev is not None and not prev.error:
            for labels, value in s.samples.get("feedring_rpc_calls_total", ()):
                old = sum(v for lb, v in prev.samples.get("feedring_rpc_calls_total", ()) if lb == labels)
                methods[(labels["service"].rsplit(".", 1)[-1], labels["method"])] += max(value - old, 0.0) / (
                    s.at - prev.at
                )
    busiest = Table(title="busiest methods, cluster-wide", title_justify="left")
    for column in ("service", "method", "calls/s", "p99"):
        busiest.add_column(column, justify="right" if column in ("calls/s", "p99") else "left")
    for (service, method), rate in sorted(methods.items(), key=lambda kv: -kv[1])[:8]:
        if rate <= 0:
            continue
        p99s = [
            quantile(s, before.get(s.target.address), "feedring_rpc_seconds", 0.99, method=method)
            for s in now
            if not s.error
        ]
        known = [p for p in p99s if p is not None]
        busiest.add_row(service, method, f"{rate:,.1f}", _fmt(max(known) if known else None, " ms", 1000, 1))
    return Group(procs, busiest)


def _scrape_all(targets_: Iterable[Target]) -> list[Scrape]:
    return [scrape(t) for t in targets_]


def run(config: ClusterConfig, interval_s: float, once: bool, console: Console | None = None) -> int:
    """Prints the view once (two scrapes `interval_s` apart) or refreshes it until Ctrl-C."""
    if console is None:  # piped (e.g. --once into a file): wide enough for every column
        console = Console() if Console().is_terminal else Console(width=200)
    found = targets(config)
    if not found:
        console.print(
            f'no process in {config.path} has a metrics address: add `metrics = "host:port"` to its '
            "[[nodes]] and [[routers]] entries (docs/operations.md)"
        )
        return 2
    before = {s.target.address: s for s in _scrape_all(found)}
    if once:
        time.sleep(interval_s)
        console.print(render(_scrape_all(found), before))
        return 0
    with Live(render(list(before.values()), {}), console=console, refresh_per_second=4, screen=False) as live:
        try:
            while True:
                time.sleep(interval_s)
                now = _scrape_all(found)
                live.update(render(now, before))
                before = {s.target.address: s for s in now}
        except KeyboardInterrupt:
            pass
    return 0
