"""TLS on a real cluster: clients that trust the CA are served, a plaintext client is told what is
wrong, nodes talk only to holders of a cluster certificate (mutual TLS), and the CLI finds the CA
through --config."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from client import FeedClient, Unavailable, top
from client.cli import main as cli_main
from common import tls
from tests.integration.conftest import ClusterHandle
from tests.support import eventually, write_cluster_file


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    handle = ClusterHandle(write_cluster_file(tmp_path_factory.mktemp("tls"), tls={"enabled": True}, metrics=True))
    try:
        handle.start()  # makes the CA and certificates, as `make cluster` does
        yield handle
    finally:
        handle.stop()


def test_a_client_trusting_the_ca_is_served_and_nodes_replicate_over_mutual_tls(secure: ClusterHandle) -> None:
    client = secure.client()
    client.follow("tls-fan", "tls-author")
    post = client.post("tls-author", "over TLS")
    eventually(lambda: _first_is(client, "tls-fan", post.id), timeout_s=10.0)
    status = client.cluster_status()  # the router reached every node over mTLS
    assert status.nodes and all(n.healthy for n in status.nodes)


def test_a_router_relays_timeline_reads_to_the_nodes_over_tls(secure: ClusterHandle) -> None:
    """router/read_relay.py calls the nodes' Feed API with its own certificate; were that refused,
    the router would read the timeline itself, so what is checked is who answered."""
    with secure.client(map_aware=False) as routed:
        routed.follow("tls-relay-fan", "tls-relay-author")
        post = routed.post("tls-relay-author", "relayed over TLS")
        eventually(lambda: _first_is(routed, "tls-relay-fan", post.id), timeout_s=10.0)
        routers = [t for t in top.targets(secure.config) if t.role == "router"]

        def by_nodes() -> None:
            scrapes = [top.scrape(t) for t in routers]
            assert sum(s.total("feedring_timeline_reads_total", by="node") for s in scrapes) >= 1
            assert sum(s.total("feedring_timeline_reads_total", by="router") for s in scrapes) == 0

        eventually(by_nodes, timeout_s=5.0)


def _first_is(client: FeedClient, user: str, post_id: int) -> None:
    assert [p.id for p in client.timeline(user).items][:1] == [post_id]


def test_a_plaintext_client_of_a_tls_cluster_gets_a_clear_error(secure: ClusterHandle) -> None:
    plain = secure.client()
    plain.close()
    with FeedClient(secure.router_address, timeout_s=3.0, ca_file="") as client:
        with pytest.raises(Unavailable, match="if the cluster serves TLS, pass --ca-file"):
            client.timeline("anyone")


def test_nodes_refuse_callers_without_a_cluster_certificate(secure: ClusterHandle) -> None:
    node = secure.config.nodes[0].address
    ca = secure.config.tls.ca_file.read_bytes()

    def serving(channel: grpc.Channel) -> bool:
        with channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
            except grpc.RpcError:
                return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    assert not serving(grpc.insecure_channel(node))
    assert not serving(grpc.secure_channel(node, grpc.ssl_channel_credentials(root_certificates=ca)))
    assert serving(grpc.secure_channel(node, tls.peer_credentials(secure.config, tls.OPS)))


def test_private_keys_are_readable_by_their_owner_only(secure: ClusterHandle) -> None:
    keys = sorted(secure.config.tls.cert_dir.glob("*.key"))
    assert {k.stem for k in keys} >= {"ca", "n1", "n2", "n3", "router-0", "ops"}
    assert all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)


def test_the_cli_finds_the_ca_through_the_cluster_file(
    secure: ClusterHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["--config", str(secure.path), "post", "tls-cli", "from the CLI"]) == 0
    assert cli_main(["--config", str(secure.path), "posts", "tls-cli"]) == 0
    assert "from the CLI" in capsys.readouterr().out
    elsewhere = str(secure.path.parent / "absent.toml")  # no cluster file to take the CA from
    assert cli_main(["--config", elsewhere, "--router", secure.router_address, "posts", "tls-cli"]) == 1
    assert "TLS" in capsys.readouterr().err
