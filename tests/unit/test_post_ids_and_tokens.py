"""Post ids (unique, time-ordered) and page tokens (opaque, checked, bound to their request)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InvalidArgument
from router import page_tokens
from router.post_ids import EPOCH_MS, PostIdGenerator, created_at_ms, generator_id


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


def test_generator_ids_are_bounded() -> None:
    with pytest.raises(ValueError):
        generator_id(64, 0)
    with pytest.raises(ValueError):
        generator_id(0, 16)


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
