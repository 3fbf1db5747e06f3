"""The `feedring` command line end to end against the session cluster, as a person would use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from tests.integration.conftest import ClusterHandle
from tests.support import eventually


def feedring(cluster: ClusterHandle, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client.cli", "--config", str(cluster.path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_follow_post_and_read_the_timeline(cluster: ClusterHandle) -> None:
    tag = uuid.uuid4().hex[:6]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    assert feedring(cluster, "follow", alice, bob).returncode == 0
    posted = feedring(cluster, "post", bob, "hello world")
    assert posted.returncode == 0
    post_id = int(posted.stdout.strip())

    def shows_the_post() -> None:
        out = feedring(cluster, "--json", "timeline", alice)
        assert out.returncode == 0
        assert [p["id"] for p in json.loads(out.stdout)["posts"]] == [post_id]

    eventually(shows_the_post)
    human = feedring(cluster, "timeline", alice)
    assert "hello world" in human.stdout and bob in human.stdout
    user = json.loads(feedring(cluster, "user", bob, "--json").stdout)  # --json after the command works too
    assert user["follower_count"] == 1 and user["post_count"] == 1
    assert json.loads(feedring(cluster, "--json", "followers", bob, "--all").stdout)["users"] == [alice]


def test_errors_are_one_line_on_stderr_with_a_nonzero_exit(cluster: ClusterHandle) -> None:
    bad = feedring(cluster, "post", "not a user", "x")
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: author 'not a user' is not a valid user id")
    assert "Traceback" not in bad.stderr
    missing = feedring(cluster, "delete", "nobody-here", "12345")
    assert missing.returncode == 1 and "no post 12345" in missing.stderr
    down = feedring(cluster, "--router", "127.0.0.1:1", "--timeout", "2", "user", "bob")
    assert down.returncode == 1 and "127.0.0.1:1" in down.stderr


def test_status_lists_every_node(cluster: ClusterHandle) -> None:
    out = feedring(cluster, "status")
    assert out.returncode == 0
    for node in cluster.config.nodes:
        assert node.id in out.stdout and node.address in out.stdout
    status = json.loads(feedring(cluster, "--json", "status").stdout)
    assert status["epoch"] >= 1 and len(status["nodes"]) == 3


def test_the_router_can_come_from_the_environment(cluster: ClusterHandle) -> None:
    # With no cluster file to read the secret from, the Admin call's credentials come from there too.
    environment = {**os.environ, "FEEDRING_ROUTER": cluster.router_address, "FEEDRING_TOKEN": cluster.local.secret}
    out = subprocess.run(
        [sys.executable, "-m", "client.cli", "--config", "/nonexistent.toml", "--json", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    assert out.returncode == 0, out.stderr
    no_config = subprocess.run(
        [sys.executable, "-m", "client.cli", "--config", "/nonexistent.toml", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "FEEDRING_ROUTER"},
    )
    assert no_config.returncode == 2 and "no such cluster file" in no_config.stderr


def test_every_command_has_help_with_an_example() -> None:
    for command in ("follow", "post", "timeline", "status", "user", "node"):
        out = subprocess.run(
            [sys.executable, "-m", "client.cli", command, "--help"], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0 and "example" in out.stdout, command


def test_generic_grpc_tools_can_discover_the_router(cluster: ClusterHandle) -> None:
    """Server reflection and the standard health service, as grpcurl or a load balancer uses them."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(cluster.router_address) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {"feedring.v1.Feed", "feedring.v1.Admin", "grpc.health.v1.Health"} <= services
        for service in ("", "feedring.v1.Feed"):
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
