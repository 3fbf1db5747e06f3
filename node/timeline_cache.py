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

It keeps authors' first pages of posts too (ReadPosts): a reader who is hot has its own posts read
over its home and salted keys on every timeline read (a merge of up to 1 + S scans, ~0.19 ms), and a
hot author's posts are read the same way whenever a coordinator's hot-post cache reloads. Such a
page is kept under the keys it read, and a write of a post under any one of them forgets it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar, cast

from google.protobuf.message import Message

from node import keys
from protos import storage_pb2

__all__ = ["TimelineCache", "READ_FAMILIES", "posts_page"]

Reply = TypeVar("Reply", bound=Message)

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


def posts_page(author_keys: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The cache's name for an author's first page of posts over these keys (a timeline's page is
    named by its consumer's encoded id)."""
    return ("P", author_keys)


class TimelineCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity  # pages kept (timelines' and authors' together); 0: none
        self.hits = 0
        self.misses = 0
        self.generation = 0  # moves whenever pages may have changed outside the loop's own writes
        # A timeline's page under its reader; an author's page under ("P", its keys): value is
        # (limit, reply).
        self._pages: OrderedDict[Hashable, tuple[int, Message]] = OrderedDict()
        self._posts_pages_of: dict[bytes, set[Hashable]] = {}  # user key -> authors' pages read from it

    def __len__(self) -> int:
        return len(self._pages)

    def get(self, consumer: bytes, limit: int) -> storage_pb2.ReadInboxResponse | None:
        """The reply kept for the consumer's first page of `limit` entries, if any (counted)."""
        reply = self._get(consumer, limit)
        assert reply is None or isinstance(reply, storage_pb2.ReadInboxResponse)
        return reply

    def put(self, consumer: bytes, limit: int, reply: storage_pb2.ReadInboxResponse, generation: int) -> None:
        """Keeps a reply built from the store, unless a write from another thread may have run while
        it was read (the generation it was read at has moved)."""
        self._put(consumer, limit, reply, generation)

    def first_page(self, page: Hashable, limit: int, build: Callable[[], Reply]) -> Reply:
        """The reply kept for `page` (a consumer's encoded id, or posts_page(author keys)) of
        `limit` entries, or the one `build` makes from the store now, kept for next time."""
        kept = self._get(page, limit)
        if kept is not None:
            return cast(Reply, kept)
        generation = self.generation
        reply = build()
        self._put(page, limit, reply, generation)
        return reply

    def get_posts(self, author_keys: tuple[str, ...], limit: int) -> storage_pb2.ReadPostsResponse | None:
        """The reply kept for the newest `limit` posts over these author keys, if any (counted)."""
        reply = self._get(posts_page(author_keys), limit)
        assert reply is None or isinstance(reply, storage_pb2.ReadPostsResponse)
        return reply

    def put_posts(
        self, author_keys: tuple[str, ...], limit: int, reply: storage_pb2.ReadPostsResponse, generation: int
    ) -> None:
        """As put(), for an author's first page of posts over `author_keys`."""
        self._put(posts_page(author_keys), limit, reply, generation)

    def _get(self, page: Hashable, limit: int) -> Message | None:
        kept = self._pages.get(page)
        if kept is None or kept[0] != limit:
            self.misses += 1
            return None
        self._pages.move_to_end(page)
        self.hits += 1
        return kept[1]

    def _put(self, page: Hashable, limit: int, reply: Message, generation: int) -> None:
        if not self.capacity or generation != self.generation:
            return
        if isinstance(page, tuple):  # an author's page: indexed under each key it read
            for key in page[1]:
                self._posts_pages_of.setdefault(key.encode("utf-8"), set()).add(page)
        self._pages[page] = (limit, reply)
        self._pages.move_to_end(page)
        if len(self._pages) > self.capacity:
            self._drop(self._pages.popitem(last=False)[0])

    def _drop(self, page: Hashable) -> None:
        """What an evicted page leaves in the index of authors' pages."""
        if isinstance(page, tuple):
            for key in page[1]:
                pages = self._posts_pages_of.get(key.encode("utf-8"))
                if pages is not None:
                    pages.discard(page)
                    if not pages:
                        del self._posts_pages_of[key.encode("utf-8")]

    def forget(self, puts: list[tuple[bytes, bytes]], deletes: Iterable[bytes]) -> None:
        """Before a write of the event loop's thread: the pages its keys may change."""
        if not self._pages:
            return
        for key, _ in puts:
            if len(key) > 3 and key[2] in _FAMILY_BYTES:
                self._forget_user(keys.user_of(key))
        for key in deletes:
            if len(key) > 3 and key[2] in _FAMILY_BYTES:
                self._forget_user(keys.user_of(key))

    def _forget_user(self, user: bytes) -> None:
        pages = self._pages
        pages.pop(user, None)
        if self._posts_pages_of:
            for page in self._posts_pages_of.pop(user, ()):
                if pages.pop(page, None) is not None:
                    self._drop(page)

    def clear(self) -> None:
        """Before and after a write from another thread (a partition copied in or dropped)."""
        self.generation += 1
        self._pages.clear()
        self._posts_pages_of.clear()
