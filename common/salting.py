"""Salted keys: where a hot (or once hot) user's posts and follower edges are spread.

A hot user's post goes to ``user#k`` with k = hash(post id) mod S, so a celebrity's burst lands on
S partitions on several nodes instead of one; a follower edge made while the user is salted goes to
``user#hash(follower) mod S``, so a million follows do not pile onto one partition either. '#' is
not allowed in user ids, so a salted key never collides with a user. This module is the only place
that builds or parses one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from common.hot_state import HotState
from common.partitioning import partition_of

__all__ = [
    "salted_key",
    "salted_keys",
    "post_key",
    "post_salt",
    "request_salt",
    "follower_key",
    "keys_of",
    "home_of",
    "merge_users",
]

_SEPARATOR = "#"


def salted_key(user: str, salt: int) -> str:
    return f"{user}{_SEPARATOR}{salt}"


def salted_keys(user: str, buckets: int) -> list[str]:
    """Every salted key of a user: ``user#0 .. user#S-1``."""
    return [salted_key(user, s) for s in range(buckets)]


def _salt_of(member: str, buckets: int) -> int:
    # Stable for a given post id or follower, so retries and deletes find the same key again.
    return partition_of(member, buckets)


def post_salt(post_id: int, buckets: int) -> int:
    return _salt_of(str(post_id), buckets)


def post_key(author: str, post_id: int, buckets: int) -> str:
    """The salted key a hot author's post is stored under."""
    return salted_key(author, post_salt(post_id, buckets))


def request_salt(request_id: str, buckets: int) -> int:
    """The salt of every attempt of one post request: each attempt gets a new post id, chosen with
    this salt (feed/posts.py), so a retry lands on the key that holds the first attempt's request
    record and is stored once."""
    return _salt_of(request_id, buckets)


def follower_key(followee: str, follower: str, buckets: int) -> str:
    """The salted key a follower edge of a salted followee is stored under."""
    return salted_key(followee, _salt_of(follower, buckets))


def keys_of(user: str, state: HotState, buckets: int) -> list[str]:
    """Every key a user's posts or follower edges may be under in this state: the home key, and
    the salted keys once the user has ever been hot."""
    return [user, *salted_keys(user, buckets)] if state.salted else [user]


def home_of(key: str) -> tuple[str, bool]:
    """(the user a key belongs to, whether the key is salted)."""
    user, separator, _ = key.partition(_SEPARATOR)
    return user, bool(separator)


def merge_users(per_key: Iterable[Iterable[str]], limit: int) -> list[str]:
    """Users listed per key (each in byte order), merged in byte order without repeats, at most
    `limit`: a user's followers over its home and salted keys (an old edge may be under two)."""
    out: list[str] = []
    for user in heapq.merge(*per_key):
        if not out or out[-1] != user:
            out.append(user)
            if len(out) >= limit:
                break
    return out
