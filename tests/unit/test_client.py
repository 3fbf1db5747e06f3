"""FeedClient against a scripted router (grpc_testing): the requests it builds, the typed results it
returns, and the feedring exceptions a status turns into, with the message a person will read.

grpc_testing channels need two threads: the client call runs in a worker while the test thread
plays the router (takes the request, answers it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from unittest import mock

import grpc
import grpc_testing
import pytest

import client as client_package
from client import (
    ClusterMap,
    DeadlineExceeded,
    FailedPrecondition,
    FeedClient,
    FeedringError,
    Internal,
    InvalidArgument,
    NotFound,
    Page,
    Post,
    Unavailable,
    User,
    WrongEpoch,
)
from protos import admin_pb2, cluster_pb2, feed_pb2, storage_pb2

FEED = feed_pb2.DESCRIPTOR.services_by_name["Feed"]
ADMIN = admin_pb2.DESCRIPTOR.services_by_name["Admin"]
ROUTER = "127.0.0.1:7100"
OK = grpc.StatusCode.OK


class ScriptedRouter:
    """A FeedClient on a grpc_testing channel; the test answers each call the client makes."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.channel = grpc_testing.channel([FEED, ADMIN], grpc_testing.strict_real_time())
        self.client = FeedClient(ROUTER, timeout_s=2.5, channel=self.channel)

    def start(self, call: Callable[[FeedClient], Any]) -> Future[Any]:
        return self.pool.submit(call, self.client)

    def answer(
        self,
        method: str,
        response: Any = None,
        code: grpc.StatusCode = OK,
        details: str = "",
        trailing: tuple[tuple[str, str], ...] = (),
    ) -> Any:
        """Takes the client's next call to `method`, answers it, and returns its request."""
        service = ADMIN if method in ADMIN.methods_by_name else FEED
        _, request, rpc = self.channel.take_unary_unary(service.methods_by_name[method])
        rpc.terminate(response, trailing, code, details)
        return request

    def call(self, call: Callable[[FeedClient], Any], method: str, response: Any = None, **status: Any) -> Any:
        """One call and its answer: returns (request, result), or raises what the client raised."""
        future = self.start(call)
        request = self.answer(method, response, **status)
        return request, future.result(timeout=5)


@pytest.fixture
def router() -> Iterator[ScriptedRouter]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield ScriptedRouter(pool)


# -- requests and typed results ---------------------------------------------------------------------


@pytest.mark.parametrize("created", [True, False])
def test_follow_sends_both_users_and_says_whether_the_edge_is_new(router: ScriptedRouter, created: bool) -> None:
    request, result = router.call(
        lambda c: c.follow("alice", "bob"), "Follow", feed_pb2.FollowResponse(created=created)
    )
    assert (request.follower, request.followee) == ("alice", "bob")
    assert result is created


def test_unfollow_says_whether_there_was_an_edge(router: ScriptedRouter) -> None:
    request, removed = router.call(
        lambda c: c.unfollow("alice", "bob"), "Unfollow", feed_pb2.UnfollowResponse(removed=False)
    )
    assert (request.follower, request.followee) == ("alice", "bob")
    assert removed is False


def test_post_returns_a_plain_frozen_post(router: ScriptedRouter) -> None:
    reply = feed_pb2.Post(id=2**63 + 5, author="bob", text="héllo", created_at_ms=1_700_000_000_123)
    request, post = router.call(lambda c: c.post("bob", "héllo"), "Post", reply)
    assert (request.author, request.text) == ("bob", "héllo")
    assert post == Post(id=2**63 + 5, author="bob", text="héllo", created_at_ms=1_700_000_000_123)
    assert type(post.id) is int  # not a protobuf field
    with pytest.raises(AttributeError):
        post.text = "edited"


def test_delete_post_sends_author_and_id(router: ScriptedRouter) -> None:
    request, result = router.call(lambda c: c.delete_post("bob", 42), "DeletePost", feed_pb2.DeletePostResponse())
    assert (request.author, request.post_id) == ("bob", 42)
    assert result is None


@pytest.mark.parametrize(
    ("name", "method", "user_field"),
    [("timeline", "GetTimeline", "user"), ("user_posts", "GetUserPosts", "author")],
)
def test_post_pages_carry_paging_fields_and_come_back_typed(
    router: ScriptedRouter, name: str, method: str, user_field: str
) -> None:
    reply = feed_pb2.PostPage(
        posts=[feed_pb2.Post(id=9, author="bob", text="b", created_at_ms=2), feed_pb2.Post(id=7, author="cy")],
        next_page_token="tok-2",
    )
    request, page = router.call(lambda c: getattr(c, name)("alice", page_size=2, page_token="tok-1"), method, reply)
    assert (getattr(request, user_field), request.page_size, request.page_token) == ("alice", 2, "tok-1")
    assert page == Page([Post(9, "bob", "b", 2), Post(7, "cy", "", 0)], "tok-2")


@pytest.mark.parametrize(("name", "method"), [("followers", "ListFollowers"), ("following", "ListFollowing")])
def test_user_pages_are_lists_of_ids(router: ScriptedRouter, name: str, method: str) -> None:
    reply = feed_pb2.UserPage(users=["ann", "bob"], next_page_token="")
    request, page = router.call(lambda c: getattr(c, name)("zed"), method, reply)
    assert (request.user, request.page_size, request.page_token) == ("zed", 0, "")  # 0: the cluster's default
    assert page == Page(["ann", "bob"], "")
    assert type(page.items) is list


def test_get_user_returns_counters_and_hot_state(router: ScriptedRouter) -> None:
    reply = feed_pb2.User(user="star", follower_count=12_000, following_count=3, post_count=40, hot=True)
    request, user = router.call(lambda c: c.get_user("star"), "GetUser", reply)
    assert request.user == "star"
    assert user == User("star", 12_000, 3, 40, True)


def test_cluster_status_mirrors_the_admin_message(router: ScriptedRouter) -> None:
    reply = admin_pb2.ClusterStatus(
        epoch=3,
        partitions=64,
        replication_factor=2,
        nodes=[
            admin_pb2.NodeHealth(
                id="n1",
                address="127.0.0.1:7101",
                healthy=True,
                partitions=40,
                keys_by_family={"posts": 5},
                delivery=storage_pb2.DeliveryStats(records=3, oldest_age_s=1.5, inbox_writes_per_s=250.0),
            ),
            admin_pb2.NodeHealth(id="n2", address="127.0.0.1:7102", healthy=False, error="connection refused"),
        ],
        hot_users=["star"],
        hot_registry=[admin_pb2.HotUser(user="star", state="HOT", pinned=True, follower_count=10)],
        router=admin_pb2.RouterStats(cache_entries=1, cache_hits=99),
        change="add n3 127.0.0.1:7103",
        change_progress=admin_pb2.ChangeProgress(phase="COPYING", keys_moved=7),
    )
    _, status = router.call(lambda c: c.cluster_status(), "GetClusterStatus", reply)
    assert (status.epoch, status.partitions, status.replication_factor) == (3, 64, 2)
    n1, n2 = status.nodes
    assert (n1.id, n1.healthy, n1.partitions, n1.keys_by_family) == ("n1", True, 40, {"posts": 5})
    assert type(n1.keys_by_family) is dict
    assert (n2.healthy, n2.error) == (False, "connection refused")
    assert status.hot_users == ["star"] and status.hot_registry[0].pinned
    assert (n1.delivery.records, n1.delivery.oldest_age_s, n1.delivery.inbox_writes_per_s) == (3, 1.5, 250.0)
    assert (status.router.cache_entries, status.router.cache_hits) == (1, 99)
    assert status.change == "add n3 127.0.0.1:7103" and status.change_progress.keys_moved == 7


def test_cluster_map_is_the_map_the_router_routes_by(router: ScriptedRouter) -> None:
    reply = cluster_pb2.ClusterMap(
        epoch=5,
        partitions=2,
        replication_factor=1,
        vnodes=8,
        nodes=[cluster_pb2.NodeInfo(id="n1", address="a:1", weight=1), cluster_pb2.NodeInfo(id="n2", address="b:2")],
        table=[cluster_pb2.ReplicaList(node_ids=["n2"]), cluster_pb2.ReplicaList(node_ids=["n1"])],
    )
    _, cluster_map = router.call(lambda c: c.cluster_map(), "GetClusterMap", reply)
    assert isinstance(cluster_map, ClusterMap)
    assert (cluster_map.epoch, cluster_map.partitions) == (5, 2)
    assert [m.id for m in cluster_map.members] == ["n1", "n2"]
    assert cluster_map.table == (("n2",), ("n1",))
    assert cluster_map.address(cluster_map.primary(0)) == "b:2"
    assert not cluster_map.changing


# -- every page --------------------------------------------------------------------------------------


def test_iter_timeline_walks_every_page_passing_each_token_back(router: ScriptedRouter) -> None:
    future = router.start(lambda c: [p.id for p in c.iter_timeline("alice", page_size=2)])
    requests = []
    for ids, token in (([5, 4], "t1"), ([3, 2], "t2"), ([1], "")):
        page = feed_pb2.PostPage(posts=[feed_pb2.Post(id=i) for i in ids], next_page_token=token)
        requests.append(router.answer("GetTimeline", page))
    assert future.result(timeout=5) == [5, 4, 3, 2, 1]
    assert [(r.user, r.page_size, r.page_token) for r in requests] == [
        ("alice", 2, ""),
        ("alice", 2, "t1"),
        ("alice", 2, "t2"),
    ]


@pytest.mark.parametrize(
    ("name", "method", "user_field"),
    [
        ("iter_followers", "ListFollowers", "user"),
        ("iter_following", "ListFollowing", "user"),
        ("iter_user_posts", "GetUserPosts", "author"),
    ],
)
def test_other_iterators_walk_pages_too(router: ScriptedRouter, name: str, method: str, user_field: str) -> None:
    def page(n: int, token: str) -> Any:
        if method == "GetUserPosts":
            return feed_pb2.PostPage(posts=[feed_pb2.Post(id=n)], next_page_token=token)
        return feed_pb2.UserPage(users=[f"u{n}"], next_page_token=token)

    future = router.start(lambda c: list(getattr(c, name)("bob", page_size=1)))
    first = router.answer(method, page(2, "next"))
    second = router.answer(method, page(1, ""))
    assert len(future.result(timeout=5)) == 2
    assert getattr(first, user_field) == "bob" and (first.page_token, second.page_token) == ("", "next")


def test_an_iterator_fetches_no_page_nobody_reads(router: ScriptedRouter) -> None:
    # A second request would never be answered: the call only returns if it stops after one page.
    future = router.start(lambda c: list(itertools.islice(c.iter_followers("bob", page_size=2), 2)))
    router.answer("ListFollowers", feed_pb2.UserPage(users=["ann", "cy"], next_page_token="more"))
    assert future.result(timeout=5) == ["ann", "cy"]


def test_an_error_on_a_later_page_reaches_the_caller(router: ScriptedRouter) -> None:
    future = router.start(lambda c: list(c.iter_timeline("alice")))
    router.answer("GetTimeline", feed_pb2.PostPage(posts=[feed_pb2.Post(id=1)], next_page_token="t1"))
    router.answer("GetTimeline", code=grpc.StatusCode.INVALID_ARGUMENT, details="page_token is not valid for this")
    with pytest.raises(InvalidArgument, match="page_token is not valid"):
        future.result(timeout=5)


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "details", "error"),
    [
        (grpc.StatusCode.NOT_FOUND, "bob has no post 3", NotFound),
        (grpc.StatusCode.INVALID_ARGUMENT, "author 'b b' is not a valid user id", InvalidArgument),
        (grpc.StatusCode.FAILED_PRECONDITION, "a membership change is in progress", FailedPrecondition),
        (grpc.StatusCode.INTERNAL, "internal error in DeletePost; see the server log", Internal),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "node n2 (127.0.0.1:7102) did not answer", DeadlineExceeded),
    ],
)
def test_a_status_becomes_its_feedring_error_with_the_servers_message(
    router: ScriptedRouter, code: grpc.StatusCode, details: str, error: type[FeedringError]
) -> None:
    with pytest.raises(error) as raised:
        router.call(lambda c: c.delete_post("bob", 3), "DeletePost", code=code, details=details)
    assert raised.value.message == details
    assert raised.value.code == code
    assert isinstance(raised.value.__cause__, grpc.RpcError)  # raised `from` the gRPC error


def test_wrong_epoch_carries_the_nodes_epoch(router: ScriptedRouter) -> None:
    with pytest.raises(WrongEpoch) as raised:
        router.call(
            lambda c: c.get_user("bob"),
            "GetUser",
            code=grpc.StatusCode.FAILED_PRECONDITION,
            details="n1 does not own partition 7 at epoch 4",
            trailing=(("feedring-epoch", "9"),),
        )
    assert raised.value.epoch == 9
    assert raised.value.message == "n1 does not own partition 7 at epoch 4"
    assert isinstance(raised.value, FailedPrecondition)


def test_a_router_that_cannot_be_reached_is_named_in_the_message(router: ScriptedRouter) -> None:
    details = "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:7100: Connection refused"
    with pytest.raises(Unavailable) as raised:
        router.call(lambda c: c.get_user("bob"), "GetUser", code=grpc.StatusCode.UNAVAILABLE, details=details)
    assert raised.value.message == f"cannot reach the feedring router at {ROUTER}: {details}"
    assert raised.value.retriable


def test_a_node_the_router_cannot_reach_is_not_blamed_on_the_router(router: ScriptedRouter) -> None:
    # The router's own message quotes gRPC's words about the node; it must reach the user unchanged.
    details = "node n2 (127.0.0.1:7102) is unavailable: failed to connect to all addresses"
    with pytest.raises(Unavailable) as raised:
        router.call(lambda c: c.get_user("bob"), "GetUser", code=grpc.StatusCode.UNAVAILABLE, details=details)
    assert raised.value.message == details


def test_the_callers_own_deadline_names_the_router_and_the_timeout(router: ScriptedRouter) -> None:
    with pytest.raises(DeadlineExceeded) as raised:
        router.call(
            lambda c: c.get_user("bob"), "GetUser", code=grpc.StatusCode.DEADLINE_EXCEEDED, details="Deadline Exceeded"
        )
    assert raised.value.message == f"the feedring router at {ROUTER} did not answer within 2.5s"


def test_an_unknown_status_is_still_a_feedring_error(router: ScriptedRouter) -> None:
    with pytest.raises(FeedringError) as raised:
        router.call(lambda c: c.get_user("bob"), "GetUser", code=grpc.StatusCode.PERMISSION_DENIED, details="no")
    assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED and raised.value.message == "no"


# -- deadlines and the channel's life ----------------------------------------------------------------


def test_every_call_carries_the_deadline() -> None:
    channel = mock.MagicMock(spec=grpc.Channel)
    client = FeedClient(ROUTER, timeout_s=1.25, channel=channel)
    calls: list[Callable[[], object]] = [
        lambda: client.follow("a", "b"),
        lambda: client.unfollow("a", "b"),
        lambda: client.post("a", "t"),
        lambda: client.delete_post("a", 1),
        lambda: client.timeline("a"),
        lambda: client.user_posts("a"),
        lambda: client.followers("a"),
        lambda: client.following("a"),
        lambda: client.get_user("a"),
        lambda: client.cluster_status(),
        lambda: client.cluster_map(),
    ]
    for call in calls:
        call()
    stubs = channel.unary_unary.return_value
    assert stubs.call_count == len(calls)
    assert all(c.kwargs.get("timeout") == 1.25 for c in stubs.call_args_list)


def test_close_closes_only_a_channel_the_client_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    opened = mock.MagicMock(spec=grpc.Channel)
    insecure_channel = mock.Mock(return_value=opened)
    monkeypatch.setattr(grpc, "insecure_channel", insecure_channel)
    with FeedClient("10.0.0.1:7100") as own:
        assert own.channel is opened
    insecure_channel.assert_called_once_with("10.0.0.1:7100")
    opened.close.assert_called_once()

    given = mock.MagicMock(spec=grpc.Channel)
    with FeedClient("10.0.0.1:7100", channel=given):
        pass
    given.close.assert_not_called()


def test_the_package_exports_the_api_and_the_shared_error_classes() -> None:
    import common.errors

    for name in ("FeedClient", "Post", "Page", "User", "ClusterStatus", "NodeHealth", "ClusterMap"):
        assert name in client_package.__all__
    for name in common.errors.__all__:
        if name[0].isupper() and name != "BY_STATUS_CODE":
            assert getattr(client_package, name) is getattr(common.errors, name), name
