"""Authentication on a real cluster: the cluster secret guards Admin and Storage, client tokens reach
the Feed API only, health checks stay open, and a refused call changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from client.cli import main as cli_main
from common.errors import PermissionDenied, Unauthenticated
from protos import admin_pb2, admin_pb2_grpc, feed_pb2, feed_pb2_grpc, storage_pb2, storage_pb2_grpc
from tests.integration.conftest import ClusterHandle
from tests.support import write_cluster_file

CLIENT_TOKEN = "app-server-token-0123456789"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    directory = tmp_path_factory.mktemp("secured")
    (directory / "tokens.txt").write_text(f"# app servers\n{CLIENT_TOKEN}\n")
    handle = ClusterHandle(
        write_cluster_file(directory, security={"feed_requires_token": True, "client_tokens_file": "tokens.txt"})
    )
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def _code(call: object, *args: object, **kwargs: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value.code()  # type: ignore[no-any-return,attr-defined]


def _metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return () if token is None else (("authorization", f"Bearer {token}"),)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, grpc.StatusCode.UNAUTHENTICATED),
        ("not-the-secret", grpc.StatusCode.UNAUTHENTICATED),
        (CLIENT_TOKEN, grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_admin_and_storage_refuse_anything_but_the_secret_and_change_nothing(
    secured: ClusterHandle, token: str | None, expected: grpc.StatusCode
) -> None:
    admin = secured.client()
    epoch = admin.cluster_status().epoch
    with grpc.insecure_channel(secured.router_address) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        remove = admin_pb2.ChangeMembershipRequest(kind=admin_pb2.ChangeMembershipRequest.REMOVE, node_id="n1")
        assert _code(lambda: list(stub.ChangeMembership(remove, metadata=_metadata(token), timeout=10))) == expected
        assert _code(stub.GetClusterStatus, admin_pb2.GetClusterStatusRequest(), metadata=_metadata(token)) == expected
    node = secured.config.nodes[0].address
    forged = feed_pb2.Post(id=1 << 40, author="victim", text="forged")
    with grpc.insecure_channel(node) as channel:
        storage = storage_pb2_grpc.StorageStub(channel)
        request = storage_pb2.StorePostRequest(author_key="victim", post=forged)
        assert _code(storage.StorePost, request, metadata=_metadata(token), timeout=10) == expected
        read = storage_pb2.ReadInboxRequest(consumer="victim", limit=10)
        assert _code(storage.ReadInbox, read, metadata=_metadata(token), timeout=10) == expected
    status = admin.cluster_status()
    assert status.epoch == epoch and len(status.nodes) == 3  # the removal never started
    assert list(admin.iter_user_posts("victim")) == []  # nothing was written


def test_health_checks_stay_open(secured: ClusterHandle) -> None:
    for address in [secured.router_address, *(n.address for n in secured.config.nodes)]:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_feed_needs_a_client_token_when_the_cluster_says_so(secured: ClusterHandle) -> None:
    anonymous = secured.client(token="")
    with pytest.raises(Unauthenticated, match="no credentials"):
        anonymous.post("alice", "hello")
    app = secured.client(token=CLIENT_TOKEN)
    posted = app.post("alice", "hello")
    app.follow("bob", "alice")
    assert [p.id for p in app.timeline("bob").items] == [posted.id]
    with pytest.raises(PermissionDenied, match="Feed API only"):
        app.cluster_status()


def test_the_cli_reads_the_secret_from_the_cluster_file(
    secured: ClusterHandle, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEEDRING_TOKEN", raising=False)
    assert cli_main(["--config", str(secured.path), "status", "--json"]) == 0
    monkeypatch.setenv("FEEDRING_TOKEN", CLIENT_TOKEN)
    assert cli_main(["--config", str(secured.path), "status"]) == 1
    assert "Feed API only" in capsys.readouterr().err


def test_no_secret_is_ever_logged(secured: ClusterHandle) -> None:
    with pytest.raises(Unauthenticated):
        secured.client(token="wrong-token-for-the-log-check").cluster_status()
    logs = "".join(path.read_text() for path in Path(secured.local.run_dir).glob("*.log"))
    assert "refused /feedring.v1.Admin/GetClusterStatus" in logs
    for secret in (secured.local.secret, CLIENT_TOKEN, "wrong-token-for-the-log-check"):
        assert secret not in logs


def test_a_cluster_without_feed_tokens_serves_anonymous_feed_calls(cluster: ClusterHandle) -> None:
    anonymous = cluster.client(token="")
    assert anonymous.post("carol", "open feed").id > 0
    with pytest.raises(Unauthenticated):
        anonymous.cluster_status()


def test_a_nodes_feed_api_asks_for_the_same_token_and_its_storage_api_for_the_secret(secured: ClusterHandle) -> None:
    node = secured.config.nodes[0]
    read = feed_pb2.GetTimelineRequest(user="bob")
    with grpc.insecure_channel(node.feed) as channel:
        feed = feed_pb2_grpc.FeedStub(channel)
        assert _code(feed.GetTimeline, read, metadata=_metadata(None), timeout=10) == grpc.StatusCode.UNAUTHENTICATED
        assert _code(feed.GetRoutingMap, feed_pb2.GetRoutingMapRequest(), timeout=10) == grpc.StatusCode.UNAUTHENTICATED
        feed.GetTimeline(read, metadata=_metadata(CLIENT_TOKEN), timeout=10)  # a client token is enough here
        # The node's Storage API is not on its Feed port at all.
        storage = storage_pb2_grpc.StorageStub(channel)
        inbox = storage_pb2.ReadInboxRequest(consumer="bob", limit=10)
        assert _code(storage.ReadInbox, inbox, metadata=_metadata(secured.local.secret), timeout=10) in (
            grpc.StatusCode.UNIMPLEMENTED,
            grpc.StatusCode.PERMISSION_DENIED,
        )
    with grpc.insecure_channel(node.address) as channel:  # and on its own port it wants the secret
        storage = storage_pb2_grpc.StorageStub(channel)
        inbox = storage_pb2.ReadInboxRequest(consumer="bob", limit=10)
        assert _code(storage.ReadInbox, inbox, metadata=_metadata(CLIENT_TOKEN), timeout=10) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
