"""A restarted node waits for its peers' hints while they keep falling, and repairs instead once a
peer is silent, the hints stop falling, or it has waited too long in all (node/hint_drain.py)."""

from __future__ import annotations

from node.hint_drain import HintDrain, Verdict


def rounds(drain: HintDrain, answers: list[tuple[bool, int]], every_s: float = 0.5) -> list[Verdict]:
    """Feeds one answer per `every_s`; returns the verdicts up to the first that is not WAIT."""
    verdicts = []
    for i, (all_answered, held) in enumerate(answers):
        verdicts.append(drain.observe(drain.started + i * every_s, all_answered, held))
        if verdicts[-1] is not Verdict.WAIT:
            break
    return verdicts


def test_no_hints_held_by_peers_that_all_answer_is_drained_at_once() -> None:
    assert rounds(HintDrain(100.0), [(True, 0)]) == [Verdict.DRAINED]


def test_hints_falling_past_the_patience_keep_the_node_waiting_until_they_are_gone() -> None:
    # 10,000 hints draining at 50 a round (100/s): 100 s, well past 60 s of patience.
    answers = [(True, 10_000 - 50 * i) for i in range(201)]
    verdicts = rounds(HintDrain(0.0, patience_s=60.0, stall_s=15.0), answers)
    assert verdicts[-1] is Verdict.DRAINED and len(verdicts) == 201


def test_hints_that_stop_falling_past_the_patience_send_the_node_to_repair() -> None:
    drain = HintDrain(0.0, patience_s=60.0, stall_s=15.0)
    answers = [(True, max(5_000 - 100 * i, 700)) for i in range(400)]  # stuck at 700 from 21 s on
    verdicts = rounds(drain, answers)
    assert verdicts[-1] is Verdict.REPAIR
    assert (len(verdicts) - 1) * 0.5 == 60.0  # at the patience: stuck for 39 s already
    assert "stopped falling" in drain.why


def test_a_stall_shorter_than_stall_s_is_waited_out() -> None:
    # Falling, then 10 s without a new low (a peer's replay backing off), then falling to none.
    answers = [(True, 3_000 - 20 * i) for i in range(130)]  # 0..64.5 s
    answers += [(True, 400)] * 20  # 65..74.5 s
    answers += [(True, max(400 - 100 * i, 0)) for i in range(1, 6)]
    verdicts = rounds(HintDrain(0.0, patience_s=60.0, stall_s=15.0), answers)
    assert verdicts[-1] is Verdict.DRAINED


def test_a_silent_peer_past_the_patience_sends_the_node_to_repair_even_with_hints_falling() -> None:
    drain = HintDrain(0.0, patience_s=60.0, stall_s=15.0)
    answers = [(i % 2 == 0, 10_000 - 10 * i) for i in range(400)]  # one peer answers every other round
    verdicts = rounds(drain, answers)
    assert verdicts[-1] is Verdict.REPAIR and (len(verdicts) - 1) * 0.5 == 60.5
    assert "does not answer" in drain.why


def test_waiting_ends_at_most_s_however_slowly_the_hints_fall() -> None:
    drain = HintDrain(0.0, patience_s=60.0, stall_s=15.0, most_s=300.0)
    answers = [(True, 1_000_000 - i) for i in range(1_000)]
    verdicts = rounds(drain, answers)
    assert verdicts[-1] is Verdict.REPAIR and (len(verdicts) - 1) * 0.5 == 300.0
    assert "after 300 s" in drain.why


def test_within_the_patience_the_node_waits_whatever_the_peers_say() -> None:
    answers = [(False, 0)] * 60 + [(True, 9)] * 59  # silent, then hints stuck: 59.5 s in all
    assert set(rounds(HintDrain(0.0, patience_s=60.0, stall_s=15.0), answers)) == {Verdict.WAIT}
