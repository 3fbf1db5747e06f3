"""Last-writer-wins values for data that can be undone: follow edges (families F, G, K) and hot-user
registry entries (H).

With replicas, the same writes reach each replica in any order (forwarded live, replayed from a hint
days later, merged by repair), so "follow, unfollow, follow again" must end the same everywhere. Each
such write carries a version (common/versions.py, stamped once by the coordinating node) and a
replica keeps whichever it has seen with the newest version; an unfollow leaves a dead edge (a
tombstone with its version) rather than nothing, so an older follow arriving later cannot bring the
edge back. Tombstones are kept for good (they are a key each; collecting them needs every replica
to have them first).

Edge value: 0x00 | version (8 bytes BE) | alive (1 byte) | extra (the G edge's followee key).
Values written before versions existed (no leading 0x00: empty, or a followee key, which never
starts with 0x00) read as version 0, alive.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from node.batch import Batch

__all__ = ["Edge", "read_edge", "edge_value", "is_alive", "set_edge", "Registry", "read_registry", "registry_value"]

_EDGE = struct.Struct(">BQB")
_REGISTRY = struct.Struct(">BBQ")


@dataclass(frozen=True)
class Edge:
    version: int
    alive: bool
    extra: bytes = b""


def read_edge(raw: bytes | None) -> Edge | None:
    if raw is None:
        return None
    if raw[:1] != b"\x00" or len(raw) < _EDGE.size:
        return Edge(0, True, raw)  # written before versions
    _, version, alive = _EDGE.unpack_from(raw)
    return Edge(version, bool(alive), raw[_EDGE.size :])


def edge_value(version: int, alive: bool, extra: bytes = b"") -> bytes:
    return _EDGE.pack(0, version, int(alive)) + extra


def is_alive(raw: bytes | None) -> bool:
    """read_edge(raw).alive without building an Edge (asked once per inbox insert)."""
    if raw is None:
        return False
    if raw[:1] != b"\x00" or len(raw) < _EDGE.size:
        return True  # written before versions
    return raw[_EDGE.size - 1] != 0


def set_edge(
    batch: Batch, key: bytes, version: int, alive: bool, extra: bytes | None = None
) -> tuple[int, Edge | None]:
    """Writes the edge state unless the stored one is as new or newer. Returns the change in
    liveness (+1 appeared, -1 went, 0) and the edge as it was. `extra` None keeps the stored extra."""
    before = read_edge(batch.get(key))
    if before is not None and before.version >= version:
        if before.version > version:  # not the same write again: a newer one, or a skewed clock
            batch.superseded(before.version)
        return 0, before
    if not alive:
        kept = b""  # a dead edge is the same everywhere, whatever it was before
    else:
        kept = extra if extra is not None else (before.extra if before is not None else b"")
    value = edge_value(version, alive, kept)
    if before is None:
        batch.put_new(key, value)
    else:
        batch.put(key, value)
    was = before is not None and before.alive
    return int(alive) - int(was), before


@dataclass(frozen=True)
class Registry:
    state: int
    pinned: bool
    version: int


def read_registry(raw: bytes | None) -> Registry | None:
    if raw is None:
        return None
    if len(raw) < _REGISTRY.size:
        return Registry(raw[0], bool(raw[1]), 0)  # written before versions
    state, pinned, version = _REGISTRY.unpack_from(raw)
    return Registry(state, bool(pinned), version)


def registry_value(state: int, pinned: bool, version: int) -> bytes:
    return _REGISTRY.pack(state, int(pinned), version)
