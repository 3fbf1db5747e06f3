"""Local failure detection: what this process believes about each peer it calls.

Every caller judges its peers for itself (Dynamo, Cassandra): nothing is agreed cluster-wide, and a
peer believed down never moves data — only an operator's ``node remove`` does. A peer is suspect
after a call to it fails for want of an answer (UNAVAILABLE, or the deadline passed: a hung process,
SIGSTOP, is the nasty case), and a circuit breaker then keeps callers away from it for a while
(0.25 s, doubling to 4 s while it keeps failing) so that requests go to other replicas at once
instead of each waiting out a deadline. When the pause ends, the next call is the probe. An optional
monitor health-checks every peer twice a second (two missed checks in a row count as a failure: a
busy process can stall for a moment), so a process learns of a dead peer it has no traffic with (a
replica deciding whether to take over its primary's deliveries) and of its return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

__all__ = ["PeerHealth"]

log = logging.getLogger(__name__)

_FIRST_PAUSE_S = 0.25
_MAX_PAUSE_S = 4.0


@dataclass
class _Peer:
    failures: int = 0  # consecutive
    probe_failures: int = 0  # consecutive failed health checks
    open_until: float = 0.0
    down_since: float = 0.0  # first failure of the current run of failures (0: answering)


class PeerHealth:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._peers: dict[str, _Peer] = {}
        self._clock = clock
        # Peers that answer but are still catching up after a restart (hints not yet replayed to
        # them): asked for reads only when no other replica answers.
        self.lagging: set[str] = set()

    def all_well(self) -> bool:
        """No peer has failed a call or a probe since it last answered, and none is catching up."""
        return not self._peers and not self.lagging

    def allows(self, address: str) -> bool:
        """Whether a call to `address` should be tried now (its breaker is closed or due a probe)."""
        peer = self._peers.get(address)
        return peer is None or peer.open_until <= self._clock()

    def down_for_s(self, address: str) -> float:
        """How long `address` has failed every call and probe (0 if it answered last)."""
        peer = self._peers.get(address)
        return self._clock() - peer.down_since if peer and peer.down_since else 0.0

    def suspected(self) -> list[str]:
        return sorted(a for a, p in self._peers.items() if p.down_since)

    def probe_failed(self, address: str) -> None:
        """A health check got no answer. A busy process can miss one (its event loop stalled on a
        big batch), so only the second in a row counts as a failure."""
        peer = self._peers.setdefault(address, _Peer())
        peer.probe_failures += 1
        if peer.probe_failures >= 2:
            self.failed(address)

    def succeeded(self, address: str) -> None:
        peer = self._peers.get(address)
        if peer is not None and peer.down_since:
            log.info("peer answers again address=%s after=%.1fs", address, self._clock() - peer.down_since)
        self._peers.pop(address, None)

    def failed(self, address: str) -> None:
        now = self._clock()
        peer = self._peers.setdefault(address, _Peer())
        if not peer.down_since:
            peer.down_since = now
            log.warning("peer not answering address=%s", address)
        peer.failures += 1
        # The exponent is capped: a peer down for thousands of calls overflowed the float (every read
        # through this caller then failed INTERNAL).
        peer.open_until = now + min(_FIRST_PAUSE_S * 2 ** min(peer.failures - 1, 16), _MAX_PAUSE_S)

    async def monitor(
        self, addresses: Callable[[], Iterable[str]], probe: Callable[[str], Awaitable[str]], every_s: float = 0.5
    ) -> None:
        """Health-checks every address each `every_s`, for ever (run it as a task). `probe` answers
        "serving", "lagging" (up, catching up) or anything else for down."""
        while True:
            targets = sorted(set(addresses()))
            results = await asyncio.gather(*(self._probe(a, probe) for a in targets))
            for address, state in zip(targets, results, strict=True):
                if state in ("serving", "lagging"):
                    self.succeeded(address)
                    if state == "lagging":
                        self.lagging.add(address)
                    else:
                        self.lagging.discard(address)
                elif self.allows(address) or not self._peers.get(address, _Peer()).down_since:
                    self.probe_failed(address)
            await asyncio.sleep(every_s)

    @staticmethod
    async def _probe(address: str, probe: Callable[[str], Awaitable[str]]) -> str:
        with contextlib.suppress(Exception):
            return await probe(address)
        return "down"
