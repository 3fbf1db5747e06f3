"""Merging the inbox with hot authors' posts: newest first, no repeats, bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from common.post_bytes import merge_newest, with_ids
from protos import feed_pb2


def posts(ids: list[int]) -> list[tuple[int, bytes]]:
    """Encoded posts, as nodes store and return them, with the ids read from their bytes."""
    return with_ids(
        [feed_pb2.Post(id=i, author="a", text=f"post {i}").SerializeToString() for i in sorted(set(ids), reverse=True)]
    )


def ids(raws: list[bytes]) -> list[int]:
    return [feed_pb2.Post.FromString(raw).id for raw in raws]


def test_merge_interleaves_and_drops_repeats() -> None:
    merged = merge_newest([posts([9, 5, 1]), posts([8, 5, 2]), posts([])], limit=10)
    assert ids(merged) == [9, 8, 5, 2, 1]


@given(st.lists(st.lists(st.integers(1, 10_000), max_size=30), max_size=6), st.integers(1, 50))
def test_merge_equals_sorted_union(streams: list[list[int]], limit: int) -> None:
    merged = ids(merge_newest([posts(s) for s in streams], limit))
    union = sorted({i for s in streams for i in s}, reverse=True)
    assert merged == union[:limit]
