"""Home-timeline inboxes on a node, by consumer (family I): written blind, filtered at read.

An inbox holds copies of the posts fanned out to its consumer, keyed by post id (byte order is
time order, so a reverse scan reads newest first). It is write-optimized, LSM-style (LevelDB is fast
at blind idempotent puts and slow at read-modify-write; Cassandra and Bigtable timelines work so):

- **Delivering an entry is one put, and nothing is read**: a retry, a second driver or another
  replica writes the same key with the same value.
- **A removal is a tombstone put beside the entry** (its key + 'x') and a blind delete of the
  entry. A newest-first scan meets the tombstone just before the entry's key and skips the entry,
  so a late copy of a deleted post, written after its tombstone, stays hidden.
- **An unfollow leaves a mark** above every entry of the inbox (0xFF... 'u' author) in the same
  batch that kills the follow edge and deletes the author's entries; a newest-first scan meets the
  marks first and skips that author's entries below them, so a delivery still in flight when the
  unfollow landed (or replayed from a hint later) never shows. A follow removes the mark again.
- **The cap holds at read time**: a read never returns an entry past the `timeline_cap` newest
  visible ones (a page below a cursor counts the visible entries above it). Storage is trimmed
  lazily: an insert notes its consumer for a check once in TRIM_EVERY entries on average, and so
  does a read that reached the cap; the background trimmer (node/inbox_trim.py) deletes the
  entries past the cap, and tombstones there and marks once they are TOMBSTONE_GRACE_S old (a
  delivery still in flight, or replayed from a hint, stays hidden that long). An inbox stays
  within about the cap plus a few TRIM_EVERY keys.
- **No counter is read or written per entry**: the node's count of inbox keys is an estimate (puts
  issued, minus deletes made), shown as such.
- **Repair compares the logical inbox** (logical_view): the newest `cap` visible entries, with the
  tombstones and marks among them; replicas that trimmed at different moments do not differ.
"""

from __future__ import annotations

import functools
import random
import struct
import time
from collections.abc import Callable, Collection, Iterable, Iterator

from common import post_bytes
from feed.post_ids import created_at_ms
from node import keys
from node.batch import Batch, Batches
from protos import feed_pb2

__all__ = ["Inboxes", "TRIM_EVERY", "TOMBSTONE_GRACE_S", "logical_view", "TimelineListener", "nobody_listens"]

TimelineListener = Callable[[list[str]], None]  # told the users whose timelines a write changed


def nobody_listens(users: list[str]) -> None:
    pass


TRIM_EVERY = 256  # inserts per consumer between trim checks, on average
TOMBSTONE_GRACE_S = 24 * 3600.0  # past the cap, tombstones and marks are kept this long
_MS = struct.Struct(">Q")

Item = tuple[bytes, bytes]


class Inboxes:
    def __init__(
        self,
        batches: Batches,
        partition: Callable[[str], int],
        timeline_cap: int,
        inactive: Collection[str] = frozenset(),
    ) -> None:
        self.batches = batches
        self.store = batches.store
        self.partition = partition
        self.timeline_cap = timeline_cap
        self.to_trim: set[tuple[int, str]] = set()  # (partition, consumer): may hold more than the cap
        self.inactive = inactive  # readers who went away: inserts skip them (node/readers.py)
        self.skipped = 0  # entries not written for them since start
        self.changed: TimelineListener = nobody_listens  # whose timelines a write changed (watch streams)
        self._sample = random.Random()
        # A node delivers to the same followers post after post: their key prefixes are kept.
        self._prefixes = functools.lru_cache(maxsize=1 << 16)(self._consumer_prefix)

    def cached_prefixes(self) -> int:
        return self._prefixes.cache_info().currsize

    def _consumer_prefix(self, consumer: str) -> tuple[int, bytes]:
        part = self.partition(consumer)
        return part, keys.user_prefix(part, keys.INBOX, consumer)

    # -- writes ----------------------------------------------------------------------------------

    def insert(self, posts: Iterable[feed_pb2.Post], consumers: Iterable[str]) -> int:
        """Puts every post into every consumer's inbox, reading nothing, except for readers who went
        away. Returns the entries written (a repeated entry is written, and counted, again)."""
        entries = [(keys.encoded_post_id(post.id), post.SerializeToString()) for post in posts]
        consumers = list(consumers)
        if self.inactive:
            active = [c for c in consumers if c not in self.inactive]
            self.skipped += (len(consumers) - len(active)) * len(entries)
            consumers = active
        puts: list[Item] = []
        check_every = len(entries) / TRIM_EVERY
        sample, note, prefixes = self._sample.random, self.to_trim.add, self._prefixes
        for consumer in consumers:
            part, inbox = prefixes(consumer)
            for post_id, raw in entries:
                puts.append((inbox + post_id, raw))
            if sample() < check_every:
                note((part, consumer))
        if puts:
            self.batches.write_blind(keys.INBOX, puts, counted=len(puts))
            self.changed(consumers)
        return len(puts)

    def remove(self, post_id: int, consumers: Iterable[str]) -> int:
        """Removes a post from every consumer's inbox, leaving a tombstone against late copies."""
        puts, deletes = [], []
        consumers = list(consumers)
        for consumer in consumers:
            part = self.partition(consumer)
            tombstone = keys.inbox_tombstone_key(part, consumer, post_id)
            puts.append((tombstone, b""))
            deletes.append(tombstone[: -len(keys.TOMBSTONE_SUFFIX)])
        if puts:
            self.batches.write_blind(keys.INBOX, puts, deletes, counted=0)  # a tombstone for an entry
            self.changed(consumers)
        return len(puts)

    def unfollowed(self, batch: Batch, part: int, consumer: str, author: str) -> None:
        """In `batch` (an unfollow's): deletes every entry of `author` and marks it unfollowed."""
        prefix = keys.user_prefix(part, keys.INBOX, consumer)
        wanted = author.encode("utf-8")
        for key, raw in self.store.scan(prefix):
            if len(key) == len(prefix) + 8 and post_bytes.author_bytes(raw) == wanted:
                batch.delete_existing(key)
        batch.put(keys.inbox_unfollow_mark_key(part, consumer, author), _MS.pack(int(time.time() * 1000)))
        self.changed([consumer])  # before the batch commits: the stream's read waits for the loop

    def followed(self, batch: Batch, part: int, consumer: str, author: str) -> None:
        """In `batch` (a follow's): the author's posts may show again."""
        batch.delete_blind(keys.inbox_unfollow_mark_key(part, consumer, author))

    # -- reads -----------------------------------------------------------------------------------

    def read(
        self, consumer: str, limit: int, before_id: int = 0, after_id: int = 0, hidden: set[bytes] | None = None
    ) -> list[bytes]:
        """The newest `limit` visible entries below `before_id` (0: from the newest) and above
        `after_id` (0: down to the oldest), as stored, never past the `timeline_cap` newest visible
        ones. `hidden` authors' entries (muted, blocked: node/relations.py) are not visible."""
        return [raw for _, raw in self.read_keyed(consumer, limit, before_id, after_id, hidden)]

    def read_keyed(
        self, consumer: str, limit: int, before_id: int = 0, after_id: int = 0, hidden: set[bytes] | None = None
    ) -> list[tuple[bytes, bytes]]:
        """As read(), each entry with its post id as its key encodes it (keys.encoded_post_id:
        big-endian, so the bytes order as the ids do): merged with other posts without decoding."""
        part, prefix = self._prefixes(consumer)
        plen = len(prefix)
        room, start, marks = self.timeline_cap, None, set(hidden or ())
        if before_id:
            below = keys.encoded_post_id(before_id)
            above = 0
            for key, _, visible in _newest_first(self.store.scan(prefix, reverse=True), plen, marks):
                if key[plen : plen + 8] < below or above >= room:
                    break
                above += visible
            room -= above
            start = keys.inbox_tombstone_key(part, consumer, before_id - 1)  # its tombstone, if any, too
        want = min(limit, room)
        if want <= 0:
            return []
        out: list[tuple[bytes, bytes]] = []
        floor = keys.encoded_post_id(after_id) if after_id else b""
        # _newest_first's rule, in line: this loop is most of a timeline read.
        entry_len, tombstoned = plen + 8, b""
        for key, raw in self.store.scan(prefix, start=start, reverse=True):
            token = key[plen:entry_len]
            if token <= floor:
                return out  # reached the refresh bound: not the cap
            if len(key) != entry_len:
                if key[plen : plen + 9] == keys.UNFOLLOW_MARK:
                    marks.add(key[plen + 9 :])
                else:
                    tombstoned = token
            elif token != tombstoned and not (marks and post_bytes.author_bytes(raw) in marks):
                out.append((token, raw))
                if len(out) >= want:
                    break
        if want == room and len(out) == want:
            self.to_trim.add((part, consumer))  # it reached the cap: there may be more below it
        return out

    # -- trimming (node/inbox_trim.py runs it) ---------------------------------------------------

    def trim(self, part: int, consumer: str, now_ms: int | None = None) -> int:
        """Deletes the entries past the `timeline_cap` newest visible ones and the entries under a
        tombstone (the tombstone stays), and tombstones past the cap and marks anywhere once past
        their grace; returns how many keys went. (An entry hidden by an unfollow mark stays: a
        follow again shows it, as it shows the author's other recent posts.)"""
        prefix = keys.user_prefix(part, keys.INBOX, consumer)
        plen = len(prefix)
        expired_ms = (now_ms if now_ms is not None else int(time.time() * 1000)) - TOMBSTONE_GRACE_S * 1000
        # Keys only, oldest first: LevelDB iterates forward faster than back, and copies no values.
        # Most checks find an inbox that is not over the cap, so this read is most of their cost.
        ascending = list(self.store.scan_keys(prefix))
        if not ascending:
            return 0
        if ascending[-1][plen : plen + 9] == keys.UNFOLLOW_MARK:  # marks sort above every entry
            past = self._past_cap_with_marks(prefix, expired_ms)
        else:
            past = self._past_cap(ascending, plen, expired_ms)
        if past:
            self.batches.write_blind(keys.INBOX, [], past, counted=-len(past))
        return len(past)

    def _past_cap(self, ascending: list[bytes], plen: int, expired_ms: float) -> list[bytes]:
        """trim's rule for an inbox without unfollow marks: its keys alone tell what is visible."""
        cap, entry_len = self.timeline_cap, plen + 8
        visible, past, tombstone = 0, [], b""
        for key in reversed(ascending):
            if len(key) == entry_len:
                if visible >= cap or key[plen:] == tombstone:
                    past.append(key)
                else:
                    visible += 1
            else:
                tombstone = key[plen:entry_len]
                if visible >= cap and created_at_ms(keys.decode_post_id(tombstone)) < expired_ms:
                    past.append(key)
        return past

    def _past_cap_with_marks(self, prefix: bytes, expired_ms: float) -> list[bytes]:
        """trim's rule where unfollow marks may hide entries (their authors are in the values)."""
        plen = len(prefix)
        visible, past, tombstone = 0, [], b""
        for key, value, seen in _newest_first(self.store.scan(prefix, reverse=True), plen, set()):
            token, kind = keys.inbox_key_kind(key, plen)
            if kind == keys.INBOX_MARK:
                if _MS.unpack(value)[0] < expired_ms:
                    past.append(key)
            elif kind == keys.INBOX_ENTRY:
                if token == tombstone or visible >= self.timeline_cap:
                    past.append(key)
            else:
                tombstone = token
                if visible >= self.timeline_cap and created_at_ms(keys.decode_post_id(token)) < expired_ms:
                    past.append(key)
            visible += seen
        return past

    # -- repair merge rule (node/repair.py) ------------------------------------------------------

    def merge_entry(self, key: bytes, value: bytes) -> int:
        """Another replica's entry, tombstone or unfollow mark, taken as its own write would be."""
        if self.store.get(key) is not None:
            return 0
        prefix = keys.inbox_prefix_of(key)
        consumer = keys.user_of(key).decode("utf-8")
        token, kind = keys.inbox_key_kind(key, len(prefix))
        if kind == keys.INBOX_TOMBSTONE:
            return self.remove(keys.decode_post_id(token), [consumer])
        if kind == keys.INBOX_MARK:
            self.batches.write_blind(keys.INBOX, [(key, value)], counted=0)  # its edge merges beside it
            return 1
        return self.insert([feed_pb2.Post.FromString(value)], [consumer])


def _newest_first(items: Iterable[Item], prefix_len: int, marks: set[bytes]) -> Iterator[tuple[bytes, bytes, int]]:
    """One inbox's keys newest first (from its top, or from within it with `marks` already read),
    each with 1 if a reader sees it: an entry not hidden by its tombstone or an unfollow mark.
    Marks met are added to `marks`."""
    hidden = b""
    for key, value in items:
        token, kind = keys.inbox_key_kind(key, prefix_len)
        if kind == keys.INBOX_ENTRY:
            visible = token != hidden and not (marks and post_bytes.author_bytes(value) in marks)
            yield key, value, int(visible)
        else:
            if kind == keys.INBOX_MARK:
                marks.add(token)
            else:
                hidden = token
            yield key, value, 0


def logical_view(inbox: Iterable[Item], cap: int, tombstones: bool) -> Iterator[Item]:
    """The keys of one partition's scan (in key order) that make an inbox what a reader sees: for each
    consumer, the newest `cap` visible entries (and, with `tombstones`, the tombstones and marks
    at or above the oldest of them); every key of another family passes unchanged. What repair
    compares and sends."""
    group: list[Item] = []
    group_prefix = b""
    for key, value in inbox:
        if keys.family_of(key) != keys.INBOX:
            if group:
                yield from _logical_inbox(group, len(group_prefix), cap, tombstones)
                group, group_prefix = [], b""
            yield key, value
            continue
        prefix = keys.inbox_prefix_of(key)
        if prefix != group_prefix and group:
            yield from _logical_inbox(group, len(group_prefix), cap, tombstones)
            group = []
        group_prefix = prefix
        group.append((key, value))
    if group:
        yield from _logical_inbox(group, len(group_prefix), cap, tombstones)


def _logical_inbox(ascending: list[Item], prefix_len: int, cap: int, tombstones: bool) -> list[Item]:
    kept: list[Item] = []
    visible = 0
    for key, value, seen in _newest_first(reversed(ascending), prefix_len, set()):
        if seen or (tombstones and len(key) != prefix_len + 8):  # not an entry hidden by one of them
            kept.append((key, value))
        visible += seen
        if visible >= cap:
            break
    kept.reverse()
    return kept
