"""A node that was away longer than gc_grace must not rejoin with its old data.

Its replicas have collected the tombstones of what was deleted meanwhile (node/tombstones.py), so a
repair would copy the deleted posts and edges back from it. A running node writes the time into its
store now and then (keys.HEARTBEAT_KEY); at start, a store whose last heartbeat is older than
gc_grace is refused with what to do instead (Cassandra leaves this to the operator's care).
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable

from node import keys
from node.store import Store

__all__ = ["AwayTooLongError", "check_not_away_too_long", "beat", "run"]

_MS = struct.Struct(">Q")
EVERY_S = 60.0  # between heartbeats (or a tenth of gc_grace, if less)


class AwayTooLongError(RuntimeError):
    """The store's node was last running longer ago than gc_grace."""


def check_not_away_too_long(
    store: Store, node_id: str, data_dir: str, gc_grace_s: float, wall: Callable[[], float] = time.time
) -> None:
    raw = store.get(keys.HEARTBEAT_KEY)
    if raw is None:
        return  # a new store, or one from before heartbeats: nothing to go by
    away_s = wall() - _MS.unpack(raw)[0] / 1000
    if away_s > gc_grace_s:
        raise AwayTooLongError(
            f"node {node_id} was last running {_days(away_s)} ago, longer than replication.gc_grace "
            f"({_days(gc_grace_s)}): its replicas have since collected the tombstones of what was deleted, "
            "so its old data could bring deleted posts and follows back, and it will not start. "
            f"Remove it (`feedring node remove {node_id} --dead`: its replicas rebuild its copies), empty its "
            f"data directory ({data_dir}), and add it again as a new node (`feedring node add {node_id} ADDRESS`)"
        )


def beat(store: Store, wall: Callable[[], float] = time.time) -> None:
    store.write([(keys.HEARTBEAT_KEY, _MS.pack(int(wall() * 1000)))])


async def run(store: Store, gc_grace_s: float) -> None:
    """Writes a heartbeat now and then until cancelled (a failed write is retried at the next)."""
    every = min(EVERY_S, gc_grace_s / 10)
    while True:
        try:
            beat(store)
        except Exception:  # a full disk: the disk watcher says so; the next beat tries again
            pass
        await asyncio.sleep(every)


def _days(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s"
