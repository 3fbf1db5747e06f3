"""When a (re)started node stops waiting for its peers' hints and repairs instead.

A node back from a crash asks its peers, every half second, how many hints they hold for it, and
serves reads once none does. Waiting for hints is the cheap way back: each peer replays exactly
what this node missed. The dear way is a repair of every partition it holds (digests of all of
them, ~130 s on the bench's 9M-key node). So:
- every peer answers and none holds a hint: drained, serve reads;
- until `patience_s`: wait, whatever the peers say;
- past it, keep waiting only while every peer answers and the hints held keep falling (a new low
  within `stall_s`): a peer replaying a big backlog is still the fastest way back. Before, the node
  gave up at `patience_s` however fast the hints were falling: a kill -9 during the bench's load
  left ~10K hints (fan-out pages) that drained in ~95 s, so the node repaired for ~130 s more and
  came back after 226-269 s where 93 s would do (docs/performance.md, 2026-12-06);
- a peer silent past `patience_s`, hints stuck for `stall_s`, or `most_s` in all: repair from the
  peers that answer (a write acknowledged by a silent peer and another reached the other).
The hints counted are those of writes this node missed: not those kept for a forward still on its
way here (node/hints.py), which while deliveries run never all settle at once. Counting them, and
re-delivering records whose finishing note was still queued (node/delivery_takeover.py), held that
re-run at ~300-400 hints for good; without both the same re-run caught up in 41 s, not 235 s.
Pure: the caller asks the peers and sleeps.
"""

from __future__ import annotations

import enum
import math

__all__ = ["HintDrain", "Verdict"]


class Verdict(enum.Enum):
    DRAINED = "drained"  # no peer holds a hint for this node: serve reads
    WAIT = "wait"  # ask again
    REPAIR = "repair"  # stop waiting: repair from the peers that answer, then serve reads


class HintDrain:
    def __init__(self, started: float, patience_s: float = 60.0, stall_s: float = 15.0, most_s: float = 600.0) -> None:
        self.started = started
        self.patience_s = patience_s
        self.stall_s = stall_s
        self.most_s = max(most_s, patience_s)
        self.lowest = math.inf  # the fewest hints held by the peers at any answer from all of them
        self.lowest_at = started  # when that low was reached
        self.why = ""  # why the last REPAIR verdict was given

    def observe(self, now: float, all_answered: bool, held: int) -> Verdict:
        """One round of asking: whether every peer answered, and the hints they hold in all."""
        if all_answered and not held:
            return Verdict.DRAINED
        if all_answered and held < self.lowest:
            self.lowest, self.lowest_at = held, now
        waited = now - self.started
        if waited < self.patience_s:
            return Verdict.WAIT
        if waited >= self.most_s:
            self.why = f"hints still held after {waited:.0f} s"
        elif not all_answered:
            self.why = "a peer that may hold hints does not answer"
        elif now - self.lowest_at >= self.stall_s:
            self.why = f"the hints held stopped falling ({held} for {now - self.lowest_at:.0f} s)"
        else:
            return Verdict.WAIT
        return Verdict.REPAIR
