"""Who may call what: the cluster secret and client tokens, checked on every call a server takes.

- The **cluster secret** authenticates nodes to each other, routers to nodes, and operators to the
  Admin service. It comes from ``$FEEDRING_CLUSTER_SECRET``, else from ``security.secret_file``
  (``make cluster`` creates that file, mode 0600, on first start).
- **Client tokens** (``$FEEDRING_CLIENT_TOKENS``, comma-separated, else ``security.client_tokens_file``,
  one per line) may call the public Feed API, nothing else. Feed calls need one only when
  ``security.feed_requires_token`` is true; the usual Feed client is an app server on a private network.
- Health checks and reflection stay open: load balancers and grpcurl need them, and they reveal no data.

A caller sends ``authorization: Bearer <token>``. No or an unknown token: UNAUTHENTICATED; a client
token on Admin or Storage: PERMISSION_DENIED. Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import ClusterConfig, ConfigError
from common.errors import FeedringError, PermissionDenied, Unauthenticated

__all__ = [
    "SECRET_ENV",
    "TOKENS_ENV",
    "CLIENT_TOKEN_ENV",
    "Credentials",
    "bearer",
    "cluster_secret",
    "ensure_cluster_secret",
    "load_credentials",
]

SECRET_ENV = "FEEDRING_CLUSTER_SECRET"
TOKENS_ENV = "FEEDRING_CLIENT_TOKENS"
CLIENT_TOKEN_ENV = "FEEDRING_TOKEN"  # what the CLI and FeedClient send, when set

_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_FEED_PREFIX = "/feedring.v1.Feed/"
_SCHEME = "bearer "


def bearer(token: str) -> tuple[tuple[str, str]]:
    """Call metadata carrying `token`."""
    return (("authorization", f"Bearer {token}"),)


def cluster_secret(config: ClusterConfig, environ: Mapping[str, str] | None = None) -> str:
    """The cluster secret, or ConfigError saying where it was looked for."""
    env = os.environ if environ is None else environ
    if env.get(SECRET_ENV):
        return env[SECRET_ENV].strip()
    path = config.security.secret_file
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"no cluster secret: set ${SECRET_ENV} or create {path} (`make cluster` creates one)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the cluster secret {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is readable by other users: chmod 600 {path}")
    if len(text) < 16:
        raise ConfigError(f"{path}: the cluster secret must be at least 16 characters")
    return text


def ensure_cluster_secret(config: ClusterConfig) -> Path | None:
    """Creates `security.secret_file` (random, mode 0600) unless it or $FEEDRING_CLUSTER_SECRET
    exists; returns the path when it created one."""
    path = config.security.secret_file
    if os.environ.get(SECRET_ENV) or path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    return path


def client_tokens(config: ClusterConfig, environ: Mapping[str, str] | None = None) -> frozenset[str]:
    env = os.environ if environ is None else environ
    if env.get(TOKENS_ENV):
        return frozenset(t.strip() for t in env[TOKENS_ENV].split(",") if t.strip())
    path = config.security.client_tokens_file
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return frozenset()
    except OSError as exc:
        raise ConfigError(f"cannot read client tokens {path}: {exc.strerror}") from None
    return frozenset(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


@dataclass(frozen=True)
class Credentials:
    secret: str
    client_tokens: frozenset[str]
    feed_requires_token: bool

    def open_to_all(self, method: str) -> bool:
        """True if `method` needs no credentials (health, reflection; Feed unless feed_requires_token)."""
        return method.startswith(_OPEN_PREFIXES) or (method.startswith(_FEED_PREFIX) and not self.feed_requires_token)

    def check(self, method: str, metadata: Iterable[tuple[str, Any]] | None) -> FeedringError | None:
        """None if the call may go on, else the error to refuse it with."""
        if self.open_to_all(method):
            return None
        feed = method.startswith(_FEED_PREFIX)
        token = _token(metadata)
        if token is None:
            need = "a client token or the cluster secret" if feed else "the cluster secret"
            return Unauthenticated(f"no credentials: {method} needs {need} (authorization: Bearer ...)")
        if _equal(token, self.secret):
            return None
        if any(_equal(token, t) for t in self.client_tokens):
            if feed:
                return None
            return PermissionDenied(f"a client token may call the Feed API only, not {method}")
        return Unauthenticated(f"bad credentials for {method}")


def load_credentials(config: ClusterConfig) -> Credentials:
    return Credentials(cluster_secret(config), client_tokens(config), config.security.feed_requires_token)


def _token(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            return text[len(_SCHEME) :] if text[: len(_SCHEME)].lower() == _SCHEME else text
    return None


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
