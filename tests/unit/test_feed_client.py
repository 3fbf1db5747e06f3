"""FeedClient against a scripted channel (grpc_testing): requests built right, results typed,
status codes turned into feedring's exceptions with the server's message."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc
import grpc_testing
import pytest

from client import FeedClient, InvalidArgument, NotFound, Post, WrongEpoch
from protos import admin_pb2, feed_pb2

FEED = feed_pb2.DESCRIPTOR.services_by_name["Feed"]
ADMIN = admin_pb2.DESCRIPTOR.services_by_name["Admin"]


class Scripted:
    """Runs one client call in a thread while the test plays the server."""

    def __init__(self) -> None:
        self.channel = grpc_testing.channel([FEED, ADMIN], grpc_testing.strict_real_time())
        self.client = FeedClient("test-router:1", timeout_s=3.0, channel=self.channel)

    def call(
        self,
        fn: Callable[[], Any],
        method: str,
        answer: Any = None,
        code: grpc.StatusCode = grpc.StatusCode.OK,
        details: str = "",
        trailing: tuple[tuple[str, str], ...] = (),
        service: Any = FEED,
    ) -> tuple[Any, Any]:
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = fn()
            except Exception as exc:  # handed to the test thread
                outcome["error"] = exc

        thread = threading.Thread(target=run)
        thread.start()
        _, request, rpc = self.channel.take_unary_unary(service.methods_by_name[method])
        rpc.terminate(answer, trailing, code, details)
        thread.join(timeout=5)
        if "error" in outcome:
            raise outcome["error"]
        return request, outcome["result"]


def test_post_builds_the_request_and_returns_a_typed_post() -> None:
    s = Scripted()
    request, post = s.call(
        lambda: s.client.post("bob", "hello"),
        "Post",
        feed_pb2.Post(id=9, author="bob", text="hello", created_at_ms=1234),
    )
    assert (request.author, request.text) == ("bob", "hello")
    assert post == Post(9, "bob", "hello", 1234)


def test_timeline_pages_are_walked_to_the_end() -> None:
    s = Scripted()
    collected: list[int] = []
    thread = threading.Thread(target=lambda: collected.extend(p.id for p in s.client.iter_timeline("alice", 2)))
    thread.start()
    tokens = []
    for page, token in (([5, 4], "t1"), ([3], "")):
        _, request, rpc = s.channel.take_unary_unary(FEED.methods_by_name["GetTimeline"])
        tokens.append(request.page_token)
        assert request.user == "alice" and request.page_size == 2
        rpc.terminate(
            feed_pb2.PostPage(posts=[feed_pb2.Post(id=i) for i in page], next_page_token=token),
            (),
            grpc.StatusCode.OK,
            "",
        )
    thread.join(timeout=5)
    assert collected == [5, 4, 3] and tokens == ["", "t1"]


@pytest.mark.parametrize(
    ("code", "details", "error"),
    [
        (grpc.StatusCode.NOT_FOUND, "bob has no post 3", NotFound),
        (grpc.StatusCode.INVALID_ARGUMENT, "text is empty", InvalidArgument),
    ],
)
def test_statuses_become_feedring_errors_with_the_message(code: grpc.StatusCode, details: str, error: type) -> None:
    s = Scripted()
    with pytest.raises(error, match=details):
        s.call(lambda: s.client.delete_post("bob", 3), "DeletePost", None, code, details)


def test_a_wrong_epoch_carries_the_nodes_epoch() -> None:
    s = Scripted()
    with pytest.raises(WrongEpoch) as err:
        s.call(
            lambda: s.client.get_user("bob"),
            "GetUser",
            None,
            grpc.StatusCode.FAILED_PRECONDITION,
            "not the owner",
            (("feedring-epoch", "7"),),
        )
    assert err.value.epoch == 7


def test_cluster_status_is_typed() -> None:
    s = Scripted()
    status_msg = admin_pb2.ClusterStatus(
        epoch=3,
        partitions=64,
        nodes=[admin_pb2.NodeHealth(id="n1", healthy=True, keys_by_family={"posts": 5})],
        hot_users=["star"],
    )
    _, status = s.call(lambda: s.client.cluster_status(), "GetClusterStatus", status_msg, service=ADMIN)
    assert status.epoch == 3 and status.nodes[0].keys_by_family == {"posts": 5} and status.hot_users == ["star"]
