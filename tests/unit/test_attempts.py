"""What a map-aware client decides (client/attempts.py), shared by FeedClient and AsyncFeedClient:
where each call goes, in what order, within which deadlines, and when it fails over."""

from __future__ import annotations

import grpc
import pytest

from client.attempts import MapState
from client.routing import RoutingTable
from common import salting
from common.grpc_status import MAP_EPOCH_KEY, SALT_BUCKETS_KEY
from protos import feed_pb2

ENTRY = "router:7000"
A, B, C = "a:1", "b:1", "c:1"


def _state(timeout_s: float = 5.0, attempt_timeout_s: float = 2.0) -> MapState:
    state = MapState(ENTRY, timeout_s, attempt_timeout_s, metadata=(("authorization", "Bearer t"),))
    state.routing = RoutingTable(epoch=7, partitions=1, addresses=(A, B, C), table=((0, 1, 2),))
    state.fetched(None)  # just fetched
    return state


def _error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "details")


def test_a_write_tries_the_replicas_in_map_order_then_the_entry_address() -> None:
    attempts = _state().attempts("Post", "alice")
    assert attempts.targets == [A, B, C, ENTRY]
    assert attempts.metadata == (("authorization", "Bearer t"), (MAP_EPOCH_KEY, "7"))


def test_timeline_reads_one_at_a_time_stick_to_one_replica_and_clients_spread() -> None:
    state = _state()
    assert len({state.attempts("GetTimeline", f"user{i}").targets[0] for i in range(60)}) == 1
    assert {_state().attempts("GetTimeline", "user1").targets[0] for _ in range(60)} == {A, B, C}


def test_timeline_reads_beside_a_call_in_flight_spread_by_key() -> None:
    state = _state()
    in_flight = iter(state.attempts("GetTimeline", "user0"))
    next(in_flight)  # sent, not answered yet
    assert {state.attempts("GetTimeline", f"user{i}").targets[0] for i in range(60)} == {A, B, C}
    assert len({state.attempts("GetTimeline", "user1").targets[0] for _ in range(10)}) == 1
    del in_flight  # its caller stopped waiting: nothing is outstanding any more
    assert not state._spread.outstanding


def test_a_call_counts_as_outstanding_until_it_ends_however_it_ends() -> None:
    state = _state()
    answered = state.attempts("GetTimeline", "alice")
    for address, _, _ in answered:
        assert state._spread.outstanding == 1
        answered.answered(address, ())
        assert state._spread.outstanding == 0
        break
    failing = state.attempts("GetTimeline", "alice")
    tried = []
    for address, _, _ in failing:
        tried.append(address)
        assert state._spread.outstanding == 1
        if len(tried) == 1:
            assert failing.failed(address, _error(grpc.StatusCode.UNAVAILABLE)) is False
            assert state._spread.outstanding == 0
            continue
        break  # the caller stops asking (cancelled): closing the iteration ends the attempt
    assert len(tried) == 2 and state._spread.outstanding == 0


def test_reads_other_than_timelines_start_at_the_primary_whatever_the_client() -> None:
    # Another process's post is on the primary once acknowledged; a third replica may lag.
    states = [_state() for _ in range(20)]
    for method in ("GetUserPosts", "GetUser", "ListFollowers", "ListFollowing"):
        assert {s.attempts(method, "alice").targets[0] for s in states} == {A}


def test_a_read_after_this_clients_write_goes_to_the_replica_that_took_it() -> None:
    state = _state()
    write = state.attempts("Follow", "bob")
    for address, _, _ in write:
        if address == A:
            write.failed(A, _error(grpc.StatusCode.UNAVAILABLE))
            continue
        write.answered(address, ())
        break
    assert state.attempts("GetTimeline", "bob").targets[0] == B


def test_a_hot_authors_next_post_goes_to_the_salted_key_its_request_id_picks() -> None:
    # Three partitions, each with another primary: the salted keys of one author land on several.
    state = _state()
    state.routing = RoutingTable(epoch=7, partitions=3, addresses=(A, B, C), table=((0, 1, 2), (1, 2, 0), (2, 0, 1)))
    home = state.routing.replicas("star")[0]

    def post(request_id: str, trailing: tuple[tuple[str, str], ...]) -> str:
        attempts = state.attempts("Post", "star", feed_pb2.PostRequest(author="star", request_id=request_id))
        address, _, _ = next(iter(attempts))
        attempts.answered(address, trailing)
        return address

    assert post("r0", ((SALT_BUCKETS_KEY, "4"),)) == home  # not known to be salted yet: its home
    sent = {f"r{i}": post(f"r{i}", ((SALT_BUCKETS_KEY, "4"),)) for i in range(1, 40)}
    for request_id, address in sent.items():
        key = salting.salted_key("star", salting.request_salt(request_id, 4))
        assert address == state.routing.replicas(key)[0], request_id
    assert len(set(sent.values())) > 1  # a burst spreads over the salted keys' nodes
    assert state.attempts("GetUserPosts", "star").targets[0] == sent["r39"]  # read-your-writes, by author
    assert state.attempts("Post", "star").targets[0] == home  # no request id: its salt is not known
    post("r40", ())  # an answer without the word: the author cooled down
    assert post("r41", ()) == home


def test_a_failed_replica_goes_last_until_it_answers_again() -> None:
    state = _state()
    attempts = state.attempts("Post", "alice")
    address, _, _ = next(iter(attempts))
    assert attempts.failed(address, _error(grpc.StatusCode.UNAVAILABLE)) is False
    assert state.attempts("Post", "alice").targets == [B, C, A, ENTRY]
    assert state.stale is False  # refreshed only once a later attempt answers


def test_only_unavailable_deadline_and_cancelled_fail_over_and_the_last_target_raises() -> None:
    attempts = _state().attempts("Post", "alice")
    tried = iter(attempts)
    next(tried)
    with pytest.raises(grpc.RpcError):
        attempts.failed(A, _error(grpc.StatusCode.INVALID_ARGUMENT))
    state = _state()
    attempts = state.attempts("Post", "alice")
    for address, _, _ in attempts:
        if address == ENTRY:
            with pytest.raises(grpc.RpcError):
                attempts.failed(address, _error(grpc.StatusCode.UNAVAILABLE))
            break
        code = grpc.StatusCode.CANCELLED if address == B else grpc.StatusCode.DEADLINE_EXCEEDED
        assert attempts.failed(address, _error(code)) is False  # a node shutting down cancels its calls
    else:
        raise AssertionError("the entry address was never tried")


def test_a_delete_whose_unanswered_attempt_deleted_the_post_counts_as_done() -> None:
    attempts = _state().attempts("DeletePost", "alice")
    tried = iter(attempts)
    next(tried)
    assert attempts.failed(A, _error(grpc.StatusCode.UNAVAILABLE)) is False
    next(tried)
    assert attempts.failed(B, _error(grpc.StatusCode.NOT_FOUND)) is True


def test_each_attempt_gets_the_attempt_deadline_and_the_last_what_is_left() -> None:
    attempts = _state(timeout_s=5.0, attempt_timeout_s=2.0).attempts("Post", "alice")
    timeouts = [timeout for _, timeout, _ in attempts]
    assert timeouts[:3] == [2.0, 2.0, 2.0]
    assert 4.9 < timeouts[-1] <= 5.0  # nothing failed here, so no time was spent


def test_an_answer_that_names_a_newer_map_makes_the_map_stale() -> None:
    state = _state()
    assert not state.stale
    attempts = state.attempts("GetUser", "alice")
    address, _, _ = next(iter(attempts))
    attempts.answered(address, ((MAP_EPOCH_KEY, "8"),))
    assert state.stale


def test_an_older_map_never_replaces_a_newer_one() -> None:
    state = _state()
    state.fetched(feed_pb2.RoutingMap(epoch=6, partitions=1))
    assert state.routing is not None and state.routing.epoch == 7
    state.fetched(feed_pb2.RoutingMap(epoch=9, partitions=1))
    assert state.routing.epoch == 9


def test_no_map_sends_everything_to_the_entry_address() -> None:
    state = MapState(ENTRY, 5.0, 2.0)
    assert state.attempts("GetTimeline", "alice").targets == [ENTRY]


def test_a_client_that_does_not_spread_reads_starts_every_timeline_at_the_primary() -> None:
    # A one-shot command (the CLI): what the last command wrote is on the primary once acknowledged.
    state = _state()
    state.spread_reads = False
    assert {state.attempts("GetTimeline", f"user{i}").targets[0] for i in range(60)} == {A}
