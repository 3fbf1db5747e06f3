"""The hot-user life cycle, shared by nodes (which decide transitions) and routers (which act on them).

    NORMAL ──(followers >= threshold)──> MIGRATING ──(followers marked)──> HOT
      ▲                                                                     │
      │                                            (followers < threshold × cooldown_ratio)
    COLD <──(recent posts copied to inboxes)── COOLING <────────────────────┘
      └──(followers >= threshold)──> MIGRATING ...

Values equal the ``feedring.v1.HotState`` enum; the comment on each member says what it means for
routing, and the properties below answer the questions routers ask of a state.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["HotState", "salt_of", "salted_key", "salted_keys"]

from common.partitioning import partition_of


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


def salted_key(user: str, salt: int) -> str:
    """'#' is not allowed in user ids, so a salted key never collides with a user."""
    return f"{user}#{salt}"


def salted_keys(user: str, buckets: int) -> list[str]:
    return [salted_key(user, s) for s in range(buckets)]


def salt_of(member: str, buckets: int) -> int:
    """The salt of a post id (str) or a follower id: stable, so retries and deletes find it again."""
    return partition_of(member, buckets)
