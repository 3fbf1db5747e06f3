"""Home-timeline inboxes on a node, by consumer (family I): written blind, filtered at read.

An inbox holds copies of the posts fanned out to its consumer, keyed by post id (byte order is
time order, so a reverse scan reads newest first). It is write-optimized, LSM-style (LevelDB is fast
at blind idempotent puts and slow at read-modify-write):

- **Delivering an entry is one put** of a key that a retry, a second driver or another replica
  writes identically. The only read is the consumer's follow edge to the post's author, once per
  consumer and author in a batch: a consumer who unfollowed the author takes nothing, so a
  delivery landing after an unfollow never brings the author back (the unfollow purged the inbox
  in the same batch that killed the edge). A replica that has not seen the follow yet takes the
  post: deliveries only go to followers, and an unfollow arriving later purges it anyway.
- **A removal is a tombstone put beside the entry** (key + 'x') and a blind delete of the entry. A
  newest-first scan meets the tombstone just before the entry's key and skips the entry, so a late
  copy of a deleted post, written after its tombstone, stays hidden.
- **The cap holds at read time**: a read never returns an entry past the `timeline_cap` newest
  visible ones (a page below a cursor counts the visible entries above it, keys only). Storage is
  trimmed lazily: an insert notes its consumer for a check once in TRIM_EVERY entries on average,
  and so does a read that reached the cap; the background trimmer (node/inbox_trim.py) deletes
  the entries past the cap, and the tombstones there once their post is TOMBSTONE_GRACE_S old (a
  delivery of a deleted post still in flight, or replayed from a hint, stays hidden that long). An
  inbox stays within about the cap plus a few TRIM_EVERY keys.
- **No counter is read or written per entry**: the node's count of inbox keys is an estimate (puts
  issued, minus deletes made), shown as such.
- **Repair compares the logical inbox** (logical_view): the newest `cap` visible entries and the
  tombstones among them; replicas that trimmed at different moments do not differ.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator

from feed.post_ids import created_at_ms
from node import keys
from node.batch import Batch, Batches
from node.versioned import is_alive
from protos import feed_pb2

__all__ = ["Inboxes", "TRIM_EVERY", "logical_view"]

TRIM_EVERY = 256  # inserts per consumer between trim checks, on average
TOMBSTONE_GRACE_S = 24 * 3600.0  # past the cap, a tombstone is kept until its post is this old


class Inboxes:
    def __init__(self, batches: Batches, partition: Callable[[str], int], timeline_cap: int) -> None:
        self.batches = batches
        self.store = batches.store
        self.partition = partition
        self.timeline_cap = timeline_cap
        self.to_trim: set[tuple[int, str]] = set()  # (partition, consumer): may hold more than the cap
        self._sample = random.Random()

    # -- writes ----------------------------------------------------------------------------------

    def insert(self, posts: Iterable[feed_pb2.Post], consumers: Iterable[str]) -> int:
        """Puts every post into every consumer's inbox, except a consumer who unfollowed its author.
        Returns the entries written (a repeated entry is written, and counted, again)."""
        entries = [
            (post.author.encode("utf-8"), keys.encoded_post_id(post.id), post.SerializeToString()) for post in posts
        ]
        get, puts = self.store.get, []
        check_every = 1.0 / TRIM_EVERY * len(entries)
        sample = self._sample.random
        for consumer in consumers:
            part = self.partition(consumer)
            edges, inbox = keys.inbox_prefixes(part, consumer)
            unfollowed: dict[bytes, bool] = {}
            for author, post_id, raw in entries:
                dead = unfollowed.get(author)
                if dead is None:
                    edge = get(edges + author)
                    dead = unfollowed[author] = edge is not None and not is_alive(edge)
                if not dead:
                    puts.append((inbox + post_id, raw))
            if sample() < check_every:
                self.to_trim.add((part, consumer))
        if puts:
            self.batches.write_blind(keys.INBOX, puts, counted=len(puts))
        return len(puts)

    def remove(self, post_id: int, consumers: Iterable[str]) -> int:
        """Removes a post from every consumer's inbox, leaving a tombstone against late copies."""
        puts, deletes = [], []
        for consumer in consumers:
            part = self.partition(consumer)
            tombstone = keys.inbox_tombstone_key(part, consumer, post_id)
            puts.append((tombstone, b""))
            deletes.append(tombstone[: -len(keys.TOMBSTONE_SUFFIX)])
        if puts:
            self.batches.write_blind(keys.INBOX, puts, deletes, counted=0)  # a tombstone for an entry
        return len(puts)

    def purge_author(self, batch: Batch, part: int, consumer: str, author: str) -> None:
        """Deletes every entry of `author` from the consumer's inbox, in `batch` (an unfollow's)."""
        prefix = keys.user_prefix(part, keys.INBOX, consumer)
        for key, raw in self.store.scan(prefix):
            if raw and feed_pb2.Post.FromString(raw).author == author:
                batch.delete_existing(key)

    # -- reads -----------------------------------------------------------------------------------

    def read(self, consumer: str, limit: int, before_id: int = 0) -> list[bytes]:
        """The newest `limit` visible entries below `before_id` (0: from the newest), as stored,
        never past the `timeline_cap` newest visible ones."""
        part = self.partition(consumer)
        prefix = keys.user_prefix(part, keys.INBOX, consumer)
        room = self.timeline_cap
        start = None
        if before_id:
            below = keys.encoded_post_id(before_id)
            room -= _visible_above(self.store.scan_keys(prefix, reverse=True), len(prefix), below, room)
            start = keys.inbox_tombstone_key(part, consumer, before_id - 1)  # its tombstone, if any, too
        want = min(limit, room)
        if want <= 0:
            return []
        out: list[bytes] = []
        hidden = b""
        plen = len(prefix)
        for key, raw in self.store.scan(prefix, start=start, reverse=True):
            post_id, tombstone = keys.inbox_key_kind(key, plen)
            if tombstone:
                hidden = post_id
            elif post_id != hidden:
                out.append(raw)
                if len(out) >= want:
                    break
        if want == room and len(out) == want:
            self.to_trim.add((part, consumer))  # it reached the cap: there may be more below it
        return out

    # -- trimming (node/inbox_trim.py runs it) ---------------------------------------------------

    def trim(self, part: int, consumer: str, now_ms: int | None = None) -> int:
        """Deletes the keys past the `timeline_cap` newest visible entries (tombstones only once past
        their grace); returns how many."""
        prefix = keys.user_prefix(part, keys.INBOX, consumer)
        plen = len(prefix)
        visible = 0
        hidden = b""
        past: list[bytes] = []
        expired_before_ms = (now_ms if now_ms is not None else int(time.time() * 1000)) - TOMBSTONE_GRACE_S * 1000
        for key in self.store.scan_keys(prefix, reverse=True):
            post_id, tombstone = keys.inbox_key_kind(key, plen)
            if visible >= self.timeline_cap:
                if not tombstone or created_at_ms(keys.decode_post_id(post_id)) < expired_before_ms:
                    past.append(key)
                continue
            if tombstone:
                hidden = post_id
            elif post_id != hidden:
                visible += 1
        if past:
            self.batches.write_blind(keys.INBOX, [], past, counted=-len(past))
        return len(past)

    # -- repair merge rule (node/repair.py) ------------------------------------------------------

    def merge_entry(self, key: bytes, value: bytes) -> int:
        """Another replica's entry or tombstone: an entry is inserted under a fan-out's rules."""
        if self.store.get(key) is not None:
            return 0
        prefix = keys.inbox_prefix_of(key)
        consumer = keys.user_of(key).decode("utf-8")
        post_id, tombstone = keys.inbox_key_kind(key, len(prefix))
        if tombstone:
            return self.remove(keys.decode_post_id(post_id), [consumer])
        return self.insert([feed_pb2.Post.FromString(value)], [consumer])


def _visible_above(newest_first: Iterator[bytes], prefix_len: int, below: bytes, most: int) -> int:
    """How many visible entries a consumer's inbox holds at or above post id `below` (at most `most`)."""
    visible = 0
    hidden = b""
    for key in newest_first:
        post_id, tombstone = keys.inbox_key_kind(key, prefix_len)
        if post_id < below or visible >= most:
            break
        if tombstone:
            hidden = post_id
        elif post_id != hidden:
            visible += 1
    return visible


def logical_view(
    inbox: Iterable[tuple[bytes, bytes]], cap: int, tombstones: bool
) -> Iterator[tuple[bytes, bytes]]:
    """The keys of one partition's scan (in key order) that make an inbox what a reader sees: for each
    consumer, the newest `cap` visible entries (and, with `tombstones`, the tombstones at or above
    the oldest of them); every key of another family passes unchanged. What repair compares and sends."""
    group: list[tuple[bytes, bytes]] = []
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


def _logical_inbox(
    ascending: list[tuple[bytes, bytes]], prefix_len: int, cap: int, tombstones: bool
) -> list[tuple[bytes, bytes]]:
    kept: list[tuple[bytes, bytes]] = []
    visible = 0
    hidden = b""
    for key, value in reversed(ascending):
        post_id, tombstone = keys.inbox_key_kind(key, prefix_len)
        if tombstone:
            hidden = post_id
            if tombstones:
                kept.append((key, value))
        elif post_id != hidden:
            kept.append((key, value))
            visible += 1
            if visible >= cap:
                break
    kept.reverse()
    return kept
