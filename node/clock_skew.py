"""How far each peer's wall clock is from this node's, from the write replies it gets anyway.

Versions of edges, mutes and blocks start from the coordinator's wall clock (common/versions.py).
A replica that already holds a newer version refuses to let an older one win and the coordinator
stamps again above it (node/replication.py), so a skewed clock cannot undo an acknowledged write;
but a node far ahead makes every version it stamps look "later" than its peers' for that long, and
operators must hear of it. Each forwarded write's reply carries the replica's wall clock: with the
round trip's start and end on ours, the peer's offset is its clock minus our midpoint, within half
the round trip (NTP's estimate, one sample). Past `max_skew_ms` (replication.max_clock_skew) the
node logs a warning once, and status and metrics show every offset.
"""

from __future__ import annotations

import logging

__all__ = ["ClockSkew"]

log = logging.getLogger(__name__)

_MAX_USEFUL_RTT_MS = 250  # a slower round trip says too little about the offset


class ClockSkew:
    def __init__(self, max_skew_ms: int) -> None:
        self.max_skew_ms = max_skew_ms
        self._offsets: dict[str, float] = {}  # peer id -> its clock minus ours, ms
        self._warned: set[str] = set()

    def note(self, peer: str, sent_ms: float, peer_ms: int, received_ms: float) -> None:
        """One reply: sent and received on our clock, `peer_ms` on the peer's as it answered."""
        rtt = received_ms - sent_ms
        if not peer_ms or rtt < 0 or rtt > _MAX_USEFUL_RTT_MS:
            return
        offset = peer_ms - (sent_ms + received_ms) / 2
        self._offsets[peer] = offset
        skewed = self.max_skew_ms > 0 and abs(offset) - rtt / 2 > self.max_skew_ms
        if skewed and peer not in self._warned:
            self._warned.add(peer)
            if offset < 0:
                log.warning(
                    "clock skew: this node's clock is %.0f ms ahead of peer %s's (replication.max_clock_skew "
                    "%d ms): check NTP on this host; the versions it stamps run ahead of its peers'",
                    -offset,
                    peer,
                    self.max_skew_ms,
                )
            else:
                log.warning(
                    "clock skew: peer %s's clock is %.0f ms ahead of this node's (replication.max_clock_skew "
                    "%d ms): check NTP on its host",
                    peer,
                    offset,
                    self.max_skew_ms,
                )
        elif not skewed and peer in self._warned and abs(offset) < self.max_skew_ms / 2:
            self._warned.discard(peer)
            log.info("clock skew: peer %s within %.0f ms of this node again", peer, abs(offset))

    def offsets_ms(self) -> dict[str, int]:
        return {peer: round(offset) for peer, offset in sorted(self._offsets.items())}

    def skewed(self) -> list[str]:
        """Peers whose clock is off from ours by more than max_skew_ms (last sample)."""
        return sorted(p for p, o in self._offsets.items() if self.max_skew_ms and abs(o) > self.max_skew_ms)
