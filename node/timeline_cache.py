"""The first page of recently read timelines, kept in memory by the node that stores them.

A ReadInbox of a timeline's first page costs ~0.2 ms of LevelDB and Python (three iterators, a get,
the filters and the merge), most of a one-hop read (measured: 0.61 ms against a bare gRPC echo's
0.33 ms; the same read answered from memory, 0.43 ms). Readers come back to the same page again and
again, so this node keeps the replies it built for the most recently read first pages, as
Cassandra's row cache does.

A cached reply is exactly what the node would build from its store now, because every write that
could change it forgets it first: the node's store wrapper (node/change_feed.py) hands this cache
every key it is about to write, and a key of any family a ReadInbox reads (the inbox, the hot
followees, the reader's own posts, mutes and blocks, the hot registry, the reader's activity)
forgets its user's page, in the writing thread, before the write. A write made from another thread
(a partition's raw copy or drop) clears everything before and after it, and a reply read while such
a write ran is not kept (`generation`). A reply is shared by every read it answers: callers only
read it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from node import keys
from protos import storage_pb2

__all__ = ["TimelineCache", "READ_FAMILIES"]

# Every family a first-page ReadInbox reads (node/data_service.py): a write to one forgets the page.
READ_FAMILIES = (
    keys.INBOX,
    keys.HOT_FOLLOWING,
    keys.POSTS,
    keys.MUTES,
    keys.BLOCKS,
    keys.BLOCKED_BY,
    keys.HOT_REGISTRY,
    keys.ACTIVITY,
)
_FAMILY_BYTES = frozenset(f[0] for f in READ_FAMILIES)


class TimelineCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity  # readers' pages kept; 0: none
        self.hits = 0
        self.misses = 0
        self.generation = 0  # moves whenever pages may have changed outside the loop's own writes
        self._pages: OrderedDict[bytes, tuple[int, storage_pb2.ReadInboxResponse]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pages)

    def get(self, consumer: bytes, limit: int) -> storage_pb2.ReadInboxResponse | None:
        """The reply kept for the consumer's first page of `limit` entries, if any (counted)."""
        kept = self._pages.get(consumer)
        if kept is None or kept[0] != limit:
            self.misses += 1
            return None
        self._pages.move_to_end(consumer)
        self.hits += 1
        return kept[1]

    def put(self, consumer: bytes, limit: int, reply: storage_pb2.ReadInboxResponse, generation: int) -> None:
        """Keeps a reply built from the store, unless a write from another thread may have run while
        it was read (the generation it was read at has moved)."""
        if not self.capacity or generation != self.generation:
            return
        self._pages[consumer] = (limit, reply)
        self._pages.move_to_end(consumer)
        if len(self._pages) > self.capacity:
            self._pages.popitem(last=False)

    def forget(self, puts: list[tuple[bytes, bytes]], deletes: Iterable[bytes]) -> None:
        """Before a write of the event loop's thread: the pages its keys may change."""
        pages = self._pages
        if not pages:
            return
        for key, _ in puts:
            if len(key) > 3 and key[2] in _FAMILY_BYTES:
                pages.pop(keys.user_of(key), None)
        for key in deletes:
            if len(key) > 3 and key[2] in _FAMILY_BYTES:
                pages.pop(keys.user_of(key), None)

    def clear(self) -> None:
        """Before and after a write from another thread (a partition copied in or dropped)."""
        self.generation += 1
        self._pages.clear()
