"""The layout version of a node's store, and bringing an older store up to it at start.

Format 1 (until 2026-12-04): inbox tombstones were a family of their own (X), read before every
inbox insert, and each user's counters kept its inbox size. Format 2: a tombstone sits right after
its entry in the inbox (node/keys.py, node/inboxes.py) and nothing counts entries. A format-1 store
is migrated when the node starts (its X keys move beside their entries, in batches; old inbox sizes
are ignored); a store written by a later format is refused, with a message saying so.
"""

from __future__ import annotations

import logging

from node import keys
from node.store import Store

__all__ = ["FORMAT", "StoreFormatError", "ensure_current"]

log = logging.getLogger(__name__)

FORMAT = 2
_BATCH = 10_000


class StoreFormatError(RuntimeError):
    """The store was written by a newer feedring than this one."""


def ensure_current(store: Store, partitions: int) -> int:
    """Migrates the store to FORMAT if it is older; returns the keys moved."""
    raw = store.get(keys.FORMAT_KEY)
    if raw is not None:
        found = int(raw.decode("ascii"))
        if found > FORMAT:
            raise StoreFormatError(
                f"this store was written in format {found} by a newer feedring; this version reads format {FORMAT}. "
                "Run the newer version, or remove the node (`feedring node remove ID --dead`) and add a fresh one"
            )
        if found == FORMAT:
            return 0
    moved = 0
    for part in range(partitions):
        while tombstones := [k for k, _ in _take(store, keys.family_prefix(part, keys.DELETED))]:
            store.write([(keys.old_tombstone_to_inbox(k), b"") for k in tombstones], tombstones)
            moved += len(tombstones)
    store.write([(keys.FORMAT_KEY, str(FORMAT).encode("ascii"))])
    if moved:
        log.info("store migrated to format %d: inbox tombstones moved beside their entries count=%d", FORMAT, moved)
    return moved


def _take(store: Store, prefix: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    for item in store.scan(prefix):
        out.append(item)
        if len(out) >= _BATCH:
            break
    return out
