"""TLS for feedring's gRPC: which files a process uses and the credentials built from them.

With `[tls] enabled = true`, every router serves its clients over TLS, and nodes and routers talk
to each other over mutual TLS: a node accepts only callers that present a certificate signed by the
cluster's CA (its peers, the routers, and local tooling with `ops.crt`). Certificates live in
`tls.cert_dir` as `<name>.crt` / `<name>.key` — a node's id, `router-<id>`, or `ops` — and are made
by `make certs` (ops/certs.py). The cluster secret still authenticates calls on top of this.
Metrics endpoints stay plain HTTP (bind them to a private address).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from common.config import ClusterConfig, ConfigError

__all__ = ["TlsFiles", "files", "router_name", "server_credentials", "peer_credentials", "client_credentials"]

OPS = "ops"  # the certificate local tooling (make cluster's health checks) presents to nodes


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def router_name(router_id: int) -> str:
    return f"router-{router_id}"


def files(config: ClusterConfig, name: str) -> TlsFiles:
    directory = config.tls.cert_dir
    return TlsFiles(config.tls.ca_file, directory / f"{name}.crt", directory / f"{name}.key")


def _read(config: ClusterConfig, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{config.path}: tls.enabled is true but {path} cannot be read ({exc.strerror}): "
            f"run `make certs` (python -m ops.certs --config {config.path})"
        ) from None


def server_credentials(config: ClusterConfig, name: str, require_client_auth: bool) -> grpc.ServerCredentials:
    f = files(config, name)
    return grpc.ssl_server_credentials(
        [(_read(config, f.key), _read(config, f.cert))],
        root_certificates=_read(config, f.ca),
        require_client_auth=require_client_auth,
    )


def peer_credentials(config: ClusterConfig, name: str) -> grpc.ChannelCredentials:
    """What a node or router presents when it calls a node: the CA to check it by, and its own cert."""
    f = files(config, name)
    return grpc.ssl_channel_credentials(
        root_certificates=_read(config, f.ca),
        private_key=_read(config, f.key),
        certificate_chain=_read(config, f.cert),
    )


def client_credentials(ca_file: Path) -> grpc.ChannelCredentials:
    """A Feed/Admin client of a router: it only needs to trust the CA."""
    try:
        return grpc.ssl_channel_credentials(root_certificates=ca_file.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read the CA file {ca_file}: {exc.strerror}") from None
