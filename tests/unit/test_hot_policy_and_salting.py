"""The hot-user policy (pure) and salted keys (one module builds and parses them)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from common import salting
from common.hot_state import HotPolicy, HotState

POLICY = HotPolicy(threshold=100, cooldown_ratio=0.8)


def test_a_user_turns_hot_at_the_threshold_and_cools_only_below_the_lower_mark() -> None:
    assert POLICY.next_state(HotState.NORMAL, False, 99) is HotState.NORMAL
    assert POLICY.next_state(HotState.NORMAL, False, 100) is HotState.MIGRATING
    assert POLICY.next_state(HotState.COLD, False, 100) is HotState.MIGRATING
    assert POLICY.next_state(HotState.HOT, False, 80) is HotState.HOT  # hysteresis: 80 is not below 80
    assert POLICY.next_state(HotState.HOT, False, 79) is HotState.COOLING
    assert POLICY.next_state(HotState.HOT, True, 0) is HotState.HOT  # pinned never cools


@given(st.sampled_from(list(HotState)), st.booleans(), st.integers(0, 1000))
def test_transitional_states_are_left_only_by_their_work_never_by_a_count(
    state: HotState, pinned: bool, count: int
) -> None:
    after = POLICY.next_state(state, pinned, count)
    if state.transitional:
        assert after is state
    assert after in (state, HotState.MIGRATING, HotState.COOLING)


def test_what_each_state_means_for_routing() -> None:
    assert [s.name for s in HotState if s.is_hot] == ["MIGRATING", "HOT"]
    assert [s.name for s in HotState if not s.fans_out] == ["HOT"]
    assert [s.name for s in HotState if not s.salted] == ["NORMAL"]
    assert [s.name for s in HotState if s.transitional] == ["MIGRATING", "COOLING"]


@given(st.text(alphabet="abcdefghij0123456789_.-", min_size=1, max_size=20), st.integers(1, 2**63))
def test_a_salted_key_parses_back_to_its_user_and_stays_stable(user: str, post_id: int) -> None:
    key = salting.post_key(user, post_id, 8)
    assert salting.home_of(key) == (user, True)
    assert key == salting.post_key(user, post_id, 8)
    assert key in salting.salted_keys(user, 8)
    assert salting.home_of(user) == (user, False)


def test_the_keys_a_user_may_have_depend_on_whether_it_was_ever_hot() -> None:
    assert salting.keys_of("bob", HotState.NORMAL, 3) == ["bob"]
    assert salting.keys_of("bob", HotState.COLD, 3) == ["bob", "bob#0", "bob#1", "bob#2"]
    assert salting.follower_key("bob", "ann", 3) in salting.salted_keys("bob", 3)
