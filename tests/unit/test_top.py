"""`feedring top`'s arithmetic on two scrapes: rates and percentiles come from differences."""

from __future__ import annotations

from client.top import Scrape, Target, quantile, render

TARGET = Target("node", "n1", "127.0.0.1:1")


def scrape(at: float, calls_ok: float, calls_bad: float, buckets: dict[str, float]) -> Scrape:
    s = Scrape(TARGET, at)
    s.samples["feedring_rpc_calls_total"] += [
        ({"service": "feedring.v1.Storage", "method": "ReadInbox", "code": "OK"}, calls_ok),
        ({"service": "feedring.v1.Storage", "method": "ReadInbox", "code": "UNAVAILABLE"}, calls_bad),
    ]
    s.samples["feedring_rpc_seconds_bucket"] += [
        ({"method": "ReadInbox", "le": le}, count) for le, count in buckets.items()
    ]
    return s


def test_percentiles_come_from_the_observations_between_two_scrapes() -> None:
    # Before: 100 fast calls. Between: 90 more at <= 1 ms and 10 at <= 100 ms.
    before = scrape(0.0, 100, 0, {"0.001": 100, "0.1": 100, "+Inf": 100})
    now = scrape(2.0, 198, 2, {"0.001": 190, "0.1": 200, "+Inf": 200})
    assert quantile(now, before, "feedring_rpc_seconds", 0.5) == 0.001
    assert quantile(now, before, "feedring_rpc_seconds", 0.99) == 0.1
    assert quantile(now, now, "feedring_rpc_seconds", 0.99) is None  # nothing happened in between
    assert quantile(now, None, "feedring_rpc_seconds", 0.99) is None


def test_the_view_shows_rates_errors_and_a_process_that_is_down() -> None:
    from rich.console import Console

    before = scrape(0.0, 100, 0, {"0.001": 100, "+Inf": 100})
    now = scrape(2.0, 198, 2, {"0.001": 200, "+Inf": 200})
    down = Scrape(Target("router", "0.0", "127.0.0.1:2"), 2.0, error="Connection refused")
    console = Console(width=200, record=True)
    console.print(render([now, down], {TARGET.address: before}))
    text = console.export_text()
    row = next(line for line in text.splitlines() if "node n1" in line)
    assert "50.0" in row and "1.0" in row  # (200 - 100) calls / 2 s; 2 errors / 2 s
    assert "down: Connection refused" in text
    assert "ReadInbox" in text
