"""Who may call what (common/security.py): the rules, and where the secret comes from."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest

from common.config import ClusterConfig, ConfigError, Security, load
from common.security import Credentials, client_tokens, cluster_secret, ensure_cluster_secret
from tests.support import write_cluster_file

RULES = Credentials(secret="s" * 32, client_tokens=frozenset({"app-token"}), feed_requires_token=False)
STRICT = Credentials(secret="s" * 32, client_tokens=frozenset({"app-token"}), feed_requires_token=True)


def auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


@pytest.mark.parametrize(
    ("rules", "method", "metadata", "expected"),
    [
        (RULES, "/grpc.health.v1.Health/Check", None, None),
        (RULES, "/feedring.v1.Feed/Post", None, None),
        (STRICT, "/feedring.v1.Feed/Post", None, grpc.StatusCode.UNAUTHENTICATED),
        (STRICT, "/feedring.v1.Feed/Post", auth("app-token"), None),
        (STRICT, "/feedring.v1.Feed/Post", auth("s" * 32), None),
        (STRICT, "/feedring.v1.Feed/Post", auth("guess"), grpc.StatusCode.UNAUTHENTICATED),
        (RULES, "/feedring.v1.Admin/ChangeMembership", None, grpc.StatusCode.UNAUTHENTICATED),
        (RULES, "/feedring.v1.Admin/ChangeMembership", auth("app-token"), grpc.StatusCode.PERMISSION_DENIED),
        (RULES, "/feedring.v1.Admin/ChangeMembership", auth("s" * 31), grpc.StatusCode.UNAUTHENTICATED),
        (RULES, "/feedring.v1.Admin/ChangeMembership", auth("s" * 32), None),
        (RULES, "/feedring.v1.Storage/StorePost", auth("app-token"), grpc.StatusCode.PERMISSION_DENIED),
        (RULES, "/feedring.v1.Storage/StorePost", [("authorization", "s" * 32)], None),  # scheme optional
        (RULES, "/some.Unknown/Method", None, grpc.StatusCode.UNAUTHENTICATED),
    ],
)
def test_rules(
    rules: Credentials, method: str, metadata: list[tuple[str, str]] | None, expected: grpc.StatusCode | None
) -> None:
    refusal = rules.check(method, metadata)
    assert (refusal.code if refusal else None) == expected
    if refusal:
        assert method in refusal.message and "s" * 16 not in refusal.message  # names the call, never a secret


def _config(tmp_path: Path) -> ClusterConfig:
    return load(write_cluster_file(tmp_path))


def test_the_secret_file_is_created_once_private_and_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEEDRING_CLUSTER_SECRET", raising=False)
    config = _config(tmp_path)
    with pytest.raises(ConfigError, match="no cluster secret"):
        cluster_secret(config)
    created = ensure_cluster_secret(config)
    assert created == config.security.secret_file
    assert os.stat(created).st_mode & 0o777 == 0o600
    first = cluster_secret(config)
    assert len(first) >= 32 and ensure_cluster_secret(config) is None and cluster_secret(config) == first
    monkeypatch.setenv("FEEDRING_CLUSTER_SECRET", "from-the-environment-1234")
    assert cluster_secret(config) == "from-the-environment-1234"


def test_a_secret_others_can_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEEDRING_CLUSTER_SECRET", raising=False)
    config = _config(tmp_path)
    config.security.secret_file.parent.mkdir(parents=True, exist_ok=True)
    config.security.secret_file.write_text("x" * 40)
    config.security.secret_file.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        cluster_secret(config)


def test_client_tokens_from_file_or_environment(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# comment\n  one  \n\ntwo\n")
    config = ClusterConfig(
        path=tmp_path / "c.toml", name="t", partitions=1, replication_factor=1, vnodes=1, run_dir=tmp_path,
        nodes=(), routers=(), security=Security(client_tokens_file=path),
    )  # fmt: skip
    assert client_tokens(config, {}) == {"one", "two"}
    assert client_tokens(config, {"FEEDRING_CLIENT_TOKENS": "a, b"}) == {"a", "b"}


def test_security_keys_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="feed_requires_token must be true or false"):
        load(write_cluster_file(tmp_path, security={"feed_requires_token": "yes"}))
    with pytest.raises(ConfigError, match="security.secret is not a known setting"):
        load(write_cluster_file(tmp_path, security={"secret": "inline"}))
