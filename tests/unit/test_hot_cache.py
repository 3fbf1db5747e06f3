"""The hot-post cache: bounded in users and posts, TTL-limited, updated by local posts and deletes."""

from __future__ import annotations

from feed.hot_cache import HotPostCache
from protos import feed_pb2


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def post(post_id: int, author: str = "star") -> feed_pb2.Post:
    return feed_pb2.Post(id=post_id, author=author, text=f"#{post_id}")


def raw(post_id: int, author: str = "star") -> bytes:
    """A post encoded, as nodes return it and the cache keeps it."""
    return post(post_id, author).SerializeToString()


def ids(entries: list[tuple[int, bytes]] | None) -> list[int]:
    """Ids of cached entries, checked against the encoded post each one carries."""
    assert entries is not None
    assert all(feed_pb2.Post.FromString(encoded).id == i for i, encoded in entries)
    return [i for i, _ in entries]


def test_bounded_in_users_least_recently_used_first() -> None:
    cache = HotPostCache(max_entries=3, posts_per_user=5, ttl_ms=1000, clock=Clock())
    for name in ["a", "b", "c"]:
        cache.put(name, [raw(1, name)], complete=True)
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("d", [raw(2, "d")], complete=True)
    assert len(cache) == 3
    assert cache.get("b") is None and cache.get("a") is not None


def test_bounded_in_posts_per_user_and_then_incomplete() -> None:
    cache = HotPostCache(max_entries=10, posts_per_user=3, ttl_ms=1000, clock=Clock())
    cache.put("star", [raw(i) for i in (9, 8, 7, 6)], complete=True)
    entry = cache.get("star")
    assert entry is not None
    assert ids(entry.posts) == [9, 8, 7]
    assert not entry.complete  # a fourth post exists that the cache does not hold
    assert entry.below(0, 3) is not None
    assert entry.below(0, 4) is None  # cannot answer: would need older posts
    cache.add_post(post(10))
    assert ids(cache.get("star").posts) == [10, 9, 8]  # type: ignore[union-attr]


def test_complete_entry_answers_any_page() -> None:
    cache = HotPostCache(max_entries=10, posts_per_user=5, ttl_ms=1000, clock=Clock())
    cache.put("star", [raw(i) for i in (5, 3, 1)], complete=True)
    entry = cache.get("star")
    assert entry is not None
    assert ids(entry.below(4, 10)) == [3, 1]
    assert entry.below(1, 10) == []


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = HotPostCache(max_entries=10, posts_per_user=5, ttl_ms=500, clock=clock)
    cache.put("star", [raw(1)], complete=True)
    clock.now = 0.4
    assert cache.get("star") is not None
    clock.now = 0.6
    assert cache.get("star") is None


def test_local_delete_drops_the_entry_and_unknown_authors_are_ignored() -> None:
    cache = HotPostCache(max_entries=10, posts_per_user=5, ttl_ms=1000, clock=Clock())
    cache.put("star", [raw(2), raw(1)], complete=True)
    cache.add_post(post(7, "stranger"))
    assert cache.get("stranger") is None
    cache.remove_post("star", 1)
    assert cache.get("star") is None


def test_an_entry_is_replaced_when_it_changes_and_kept_when_reloaded_unchanged() -> None:
    """A timeline page merged from an entry is kept by the entry's identity (feed/merged_pages.py):
    a change must make a new entry, and an unchanged reload must not."""
    clock = Clock()
    cache = HotPostCache(max_entries=10, posts_per_user=3, ttl_ms=500, clock=clock)
    first = cache.put("star", [raw(2), raw(1)], complete=True)
    clock.now = 0.6  # expired: reloaded with the same posts
    assert cache.get("star") is None
    assert cache.put("star", [raw(2), raw(1)], complete=True) is first and cache.get("star") is first
    cache.add_post(post(3))
    added = cache.get("star")
    assert added is not first and ids(added.posts) == [3, 2, 1] and ids(first.posts) == [2, 1]  # type: ignore[union-attr]
    assert cache.put("star", [raw(4), raw(3), raw(2)], complete=True) is not added
