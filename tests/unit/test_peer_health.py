"""The failure detector's circuit breaker (common/peer_health.py)."""

from __future__ import annotations

from common.peer_health import PeerHealth


def test_a_peer_down_for_thousands_of_calls_keeps_its_breaker_at_the_longest_pause() -> None:
    now = [100.0]
    health = PeerHealth(clock=lambda: now[0])
    for _ in range(5000):  # 2 ** 4999 seconds overflowed a float: every call through it then failed
        health.failed("n1:1")
    assert not health.allows("n1:1")
    now[0] += 4.0
    assert health.allows("n1:1")
