"""Post ids (unique, time-ordered) and page tokens (opaque, checked, bound to their request)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.cluster_map import NODE_GENERATORS, Member, initial_map
from common.errors import InvalidArgument
from feed import page_tokens
from feed.post_ids import EPOCH_MS, PostIdGenerator, created_at_ms, generator_id
from tests.inmem_cluster import make_config


class StuckClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_ids_increase_and_never_repeat_within_a_millisecond_burst() -> None:
    clock = StuckClock(EPOCH_MS + 1_000)
    gen = PostIdGenerator(5, clock)
    ids = [gen.next_id() for _ in range(10_000)]  # more than 4096 in one millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_ids_keep_increasing_when_the_clock_steps_back() -> None:
    clock = StuckClock(EPOCH_MS + 5_000)
    gen = PostIdGenerator(1, clock)
    first = gen.next_id()
    clock.ms -= 2_000
    assert gen.next_id() > first


def test_two_generators_never_collide() -> None:
    clock = StuckClock(EPOCH_MS + 42)
    a, b = PostIdGenerator(generator_id(0, 0), clock), PostIdGenerator(generator_id(0, 1), clock)
    assert not {a.next_id() for _ in range(5000)} & {b.next_id() for _ in range(5000)}


def test_created_at_is_encoded_in_the_id() -> None:
    gen = PostIdGenerator(3, StuckClock(EPOCH_MS + 123_456))
    assert created_at_ms(gen.next_id()) == EPOCH_MS + 123_456


def test_generator_ids_are_bounded_and_routers_leave_the_upper_half_to_nodes() -> None:
    with pytest.raises(ValueError):
        generator_id(32, 0)
    with pytest.raises(ValueError):
        generator_id(0, 16)
    assert generator_id(31, 15) == 511 < NODE_GENERATORS[0]


def test_nodes_keep_their_generator_across_changes_and_new_nodes_get_a_free_one() -> None:
    config = make_config(nodes=3)
    first = initial_map(config)
    assert [first.generator(n) for n in ("n1", "n2", "n3")] == [512, 513, 514]
    added = first.begin_change((*first.members[:2], Member("n4", "n4.mem:1")), "add n4, drop n3").commit_change()
    assert [added.generator(n) for n in ("n1", "n2", "n4")] == [512, 513, 515]
    again = added.begin_change((*added.members, Member("n5", "n5.mem:1")), "add n5").commit_change()
    assert again.generator("n5") == 514  # n3's, free since it left
    old = replace(first, members=tuple(replace(m, generator=0) for m in first.members))  # a map from before
    assert sorted(old.generator(n) for n in ("n1", "n2", "n3")) == [512, 513, 514]


def test_tokens_round_trip_and_bind_to_their_request() -> None:
    token = page_tokens.encode_post_cursor(1, "alice", 12345)
    assert page_tokens.decode_post_cursor(1, "alice", token) == 12345
    assert page_tokens.decode_post_cursor(1, "alice", "") == 0
    with pytest.raises(InvalidArgument, match="different request"):
        page_tokens.decode_post_cursor(1, "bob", token)
    with pytest.raises(InvalidArgument, match="different request"):
        page_tokens.decode_post_cursor(2, "alice", token)
    user_token = page_tokens.encode_user_cursor(3, "star", "fan42")
    assert page_tokens.decode_user_cursor(3, "star", user_token) == "fan42"


def test_a_flipped_character_is_caught() -> None:
    token = page_tokens.encode_post_cursor(1, "alice", 987654321)
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    with pytest.raises(InvalidArgument, match="not valid"):
        page_tokens.decode_post_cursor(1, "alice", flipped)


@given(st.text(max_size=60))
def test_garbage_tokens_only_ever_raise_invalid_argument(garbage: str) -> None:
    try:
        page_tokens.decode_post_cursor(1, "alice", garbage)
        page_tokens.decode_user_cursor(3, "alice", garbage)
    except InvalidArgument:
        pass
