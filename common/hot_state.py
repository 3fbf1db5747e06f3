"""The hot-user life cycle, shared by nodes (which decide transitions) and routers (which act on them).

    NORMAL ──(followers >= threshold)──> MIGRATING ──(followers marked)──> HOT
      ▲                                                                     │
      │                                            (followers < threshold × cooldown_ratio)
    COLD <──(recent posts copied to inboxes)── COOLING <────────────────────┘
      └──(followers >= threshold)──> MIGRATING ...

Values equal the ``feedring.v1.HotState`` enum; the comment on each member says what it means for
routing, and the properties below answer the questions routers ask of a state. ``HotPolicy`` is the
rule that starts transitions (pure: the node applies it where the follower count changes), and
``HotUser`` is the one shape a registry entry has outside the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["HotState", "HotPolicy", "HotUser"]


class HotState(IntEnum):
    NORMAL = 0  # never hot: posts and edges under the home key, posts fanned out
    MIGRATING = 1  # turning hot: new edges salted and merged-at-read; posts still fanned out
    HOT = 2  # posts salted, not fanned out; followers merge them at read time
    COOLING = 3  # fanned out again; followers' merged-at-read marks are being replaced by copies
    COLD = 4  # normal again, but salted edges and posts from its hot time remain

    @property
    def salted(self) -> bool:
        """New follower edges go to salted keys (and old ones may be there)."""
        return self is not HotState.NORMAL

    @property
    def merged_at_read(self) -> bool:
        """New followers must be marked merged-at-read instead of relying on fan-out alone."""
        return self in (HotState.MIGRATING, HotState.HOT, HotState.COOLING)

    @property
    def fans_out(self) -> bool:
        return self is not HotState.HOT

    @property
    def is_hot(self) -> bool:
        """Hot as a user sees it: posts are (or are about to be) merged at read time."""
        return self in (HotState.MIGRATING, HotState.HOT)

    @property
    def transitional(self) -> bool:
        """Work is owed before the next state: marking followers, or copying posts to them."""
        return self in (HotState.MIGRATING, HotState.COOLING)


@dataclass(frozen=True)
class HotPolicy:
    """When a follower count starts a transition, with hysteresis so a user hovering around the
    threshold does not flap: hot at `threshold`, cooling only below threshold × cooldown_ratio."""

    threshold: int = 10_000
    cooldown_ratio: float = 0.8

    def next_state(self, state: HotState, pinned: bool, follower_count: int) -> HotState:
        """The state a user in `state` moves to now that it has `follower_count` followers."""
        if state in (HotState.NORMAL, HotState.COLD) and follower_count >= self.threshold:
            return HotState.MIGRATING
        if state is HotState.HOT and not pinned and follower_count < self.threshold * self.cooldown_ratio:
            return HotState.COOLING
        return state


@dataclass(frozen=True)
class HotUser:
    """A hot-user registry entry (the truth lives on the user's home partition)."""

    user: str
    state: HotState
    pinned: bool = False
    follower_count: int = 0
    version: int = 0  # of the registry entry: with replicas, the newest wins
