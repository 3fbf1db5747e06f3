"""Collecting tombstones once no replica can still need them (Cassandra's gc_grace, with its repair
rule made a check rather than an operator's duty).

A delete leaves a tombstone so a late copy of what it deleted cannot come back: a post tombstone (Y,
its value the version the delete's coordinator stamped) and a dead edge (F, G, K, U, V, W: the
unfollow's, unmute's or unblock's version). Without collection they are kept for good. A tombstone
is collected when both hold:
- it is older than `replication.gc_grace` (10 days by default): a hint (at most `max_hint_age`, which
  must be shorter) or a client's retry of the write it beat is long gone;
- its partition was *in sync* after it was written: a repair pass that started later reached every
  replica of the partition and left them equal (node/repair.py), so every replica holds the
  tombstone and none still holds what it deleted. The partition's first replica records the pass's
  start time and tells the others (InSync); a node that has not heard one since it started, or whose
  partition's replicas changed since, collects nothing there.
Collection happens where replicas compare: a digest scan (the background pass, and a peer's
GetDigests) leaves out what is collectable and deletes it. Replicas use the same in-sync time, so
their digests agree; a tombstone that crosses the line between two replicas' scans shows as one
difference, and the merge of a collectable tombstone deletes what it names and keeps nothing.

Inbox tombstones and unfollow marks need none of this: past the cap they go after a day
(node/inboxes.py), so each inbox holds a bounded number. A node down longer than gc_grace may hold
data whose tombstones are gone: node/server.py refuses to start it (keys.HEARTBEAT_KEY).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Iterator

from feed.post_ids import created_at_ms
from node import keys
from node.versioned import read_edge

__all__ = [
    "Tombstones",
    "tombstone_value",
    "tombstone_version",
    "deleted_ms",
    "collectable",
    "sift",
    "EDGE_FAMILIES",
    "MARGIN_MS",
]

_VERSION = struct.Struct(">Q")
EDGE_FAMILIES = frozenset(
    {keys.FOLLOWERS, keys.FOLLOWING, keys.HOT_FOLLOWING, keys.MUTES, keys.BLOCKS, keys.BLOCKED_BY}
)
# Between a coordinator's stamp and a quorum's copy: a write's deadline, clocks' skew. A repair must
# start this much (or a tenth of gc_grace, if less: tests use a grace of seconds) after a
# tombstone's stamp to count as having seen it everywhere.
MARGIN_MS = 5 * 60 * 1000


def tombstone_value(version: int) -> bytes:
    return _VERSION.pack(version)


def tombstone_version(key: bytes, value: bytes) -> int:
    """A post tombstone's version; one written before tombstones were dated reads as its post's
    creation (a lower bound of its deletion: the in-sync rule still holds it back)."""
    if len(value) == _VERSION.size:
        return int(_VERSION.unpack(value)[0])
    return created_at_ms(keys.post_id_of(key)) << 16


def deleted_ms(key: bytes, value: bytes) -> int | None:
    """When the tombstone under `key` was written (the coordinator's clock), or None if the entry is
    not a collectable tombstone."""
    family = keys.family_of(key)
    if family == keys.POST_TOMBSTONES:
        return tombstone_version(key, value) >> 16
    if family in EDGE_FAMILIES:
        edge = read_edge(value)
        if edge is not None and not edge.alive and edge.version:
            return edge.version >> 16
    return None


class Tombstones:
    """Which tombstones a node may collect, per partition."""

    def __init__(self, gc_grace_s: float, wall: Callable[[], float] = time.time) -> None:
        self.gc_grace_ms = int(gc_grace_s * 1000)
        self.margin_ms = min(MARGIN_MS, self.gc_grace_ms // 10)
        self.wall = wall
        self._in_sync: dict[int, tuple[int, tuple[str, ...]]] = {}  # partition -> (since ms, its replicas)
        self._swept: dict[int, int] = {}  # partition -> ms: a single copy's last collection scan

    def note_in_sync(self, partition: int, since_ms: int, replicas: Iterable[str]) -> None:
        """Every replica of `partition` (these) held the same data as of `since_ms` or later."""
        replicas = tuple(sorted(replicas))
        known = self._in_sync.get(partition)
        if known is None or known[1] != replicas or known[0] < since_ms:
            self._in_sync[partition] = (since_ms, replicas)

    def sweep_due(self, partition: int, now_ms: int) -> bool:
        """With one copy no repair scans a partition: it is scanned for tombstones a tenth of gc_grace
        apart (each call that answers True counts as that scan)."""
        if now_ms - self._swept.get(partition, 0) < self.gc_grace_ms // 10:
            return False
        self._swept[partition] = now_ms
        return True

    def in_sync_since(self, partition: int, replicas: Iterable[str]) -> int:
        """When `partition` was last in sync among these replicas, as far as this node knows (0: never)."""
        found = self._in_sync.get(partition)
        return found[0] if found is not None and found[1] == tuple(sorted(replicas)) else 0

    def horizon(self, partition: int, replicas: Iterable[str]) -> int:
        """Tombstones written before this (ms) may go; 0: none may (never in sync as far as this node
        knows, or with other replicas than today's)."""
        return self.horizon_since(self.in_sync_since(partition, replicas))

    def horizon_since(self, in_sync_since_ms: int) -> int:
        """The horizon of a partition in sync since then (0: never)."""
        if not in_sync_since_ms:
            return 0
        return max(0, min(int(self.wall() * 1000) - self.gc_grace_ms, in_sync_since_ms - self.margin_ms))


def collectable(key: bytes, value: bytes, horizon: int) -> bool:
    """Whether the entry is a tombstone written before `horizon` (ms; 0: nothing is)."""
    if not horizon:
        return False
    when = deleted_ms(key, value)
    return when is not None and when < horizon


def sift(
    entries: Iterable[tuple[bytes, bytes]], horizon: int, collect: Callable[[bytes], None]
) -> Iterator[tuple[bytes, bytes]]:
    """`entries` without the tombstones written before `horizon`, each handed to `collect`."""
    if not horizon:
        yield from entries
        return
    for key, value in entries:
        if collectable(key, value, horizon):
            collect(key)
            continue
        yield key, value
