"""Time-ordered, unique 64-bit post ids (the Snowflake layout).

    bit 63 .. 22   41 bits  milliseconds since 2025-01-01 UTC (good until 2094)
    bit 21 .. 12   10 bits  generator id: a router's is its id (0..31) * 16 + worker (0..15); a
                            node's is kept in the cluster map (512..1023, common/cluster_map.py)
    bit 11 .. 0    12 bits  sequence within the millisecond

Two generators with different ids can never produce the same id; one generator never repeats
itself, even if the wall clock steps back (it keeps using its last timestamp until the clock catches
up) or more than 4096 posts arrive in a millisecond (it borrows the next millisecond).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["EPOCH_MS", "PostIds", "PostIdGenerator", "created_at_ms", "generator_id", "ids_in_ms", "now_as_id"]

EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
_GENERATOR_BITS = 10
_SEQUENCE_BITS = 12
_MAX_SEQUENCE = (1 << _SEQUENCE_BITS) - 1


class PostIds(Protocol):
    def next_id(self) -> int: ...


def generator_id(router_id: int, worker: int) -> int:
    """A router worker's generator: 0..511 (nodes have 512..1023)."""
    if not 0 <= router_id < 32 or not 0 <= worker < 16:
        raise ValueError(f"router id must be 0..31 and worker 0..15 (got {router_id}, {worker})")
    return router_id * 16 + worker


def created_at_ms(post_id: int) -> int:
    return (post_id >> (_GENERATOR_BITS + _SEQUENCE_BITS)) + EPOCH_MS


def now_as_id() -> int:
    """The smallest id a post made now could have (ids above it are newer than now)."""
    return ids_in_ms(time.time_ns() // 1_000_000 - EPOCH_MS)


def ids_in_ms(ms: int) -> int:
    """How far apart the ids of two posts made `ms` milliseconds apart are."""
    return ms << (_GENERATOR_BITS + _SEQUENCE_BITS)


class PostIdGenerator:
    def __init__(self, generator: int, clock_ms: Callable[[], int] | None = None) -> None:
        if not 0 <= generator < (1 << _GENERATOR_BITS):
            raise ValueError(f"generator id must be 0..1023 (got {generator})")
        self.generator = generator
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._last_ms = 0
        self._sequence = 0

    def next_id(self) -> int:
        now = self._clock_ms() - EPOCH_MS
        if now > self._last_ms:
            self._last_ms, self._sequence = now, 0
        elif self._sequence < _MAX_SEQUENCE:
            self._sequence += 1  # same millisecond, or the clock stepped back
        else:
            self._last_ms, self._sequence = self._last_ms + 1, 0
        return (
            (self._last_ms << (_GENERATOR_BITS + _SEQUENCE_BITS)) | (self.generator << _SEQUENCE_BITS) | self._sequence
        )
