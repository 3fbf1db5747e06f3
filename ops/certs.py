"""`make certs`: a local certificate authority and one certificate per process of a cluster file.

    python -m ops.certs --config cluster.toml [--force] [--name n4=127.0.0.1]

Writes into `tls.cert_dir`: ca.crt/ca.key, then `<name>.crt/.key` for every node (its id), every
router (`router-<id>`) and `ops` (local tooling), each valid for its process's host, localhost and
127.0.0.1, for both server and client use (mutual TLS). Keys are mode 0600. Existing files are kept
unless --force; a node added later gets its certificate with --name ID=HOST (`make node` does it).
Uses the `cryptography` library: ECDSA P-256, SHA-256.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.config import ClusterConfig, ConfigError, load
from common.tls import OPS, router_name

__all__ = ["ensure_certs", "process_hosts", "main"]

_CA_DAYS = 3650
_LEAF_DAYS = 825


def process_hosts(config: ClusterConfig) -> dict[str, str]:
    """Certificate name -> the host its process listens on."""
    hosts = {n.id: n.address.rpartition(":")[0] for n in config.nodes}
    hosts.update({router_name(r.id): r.address.rpartition(":")[0] for r in config.routers})
    hosts[OPS] = "127.0.0.1"
    return hosts


def _write(path: Path, data: bytes, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    if private:
        os.chmod(path, 0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
        if ip != ipaddress.ip_address("127.0.0.1"):
            names.append(x509.IPAddress(ip))
    except ValueError:
        if host and host != "localhost":
            names.append(x509.DNSName(host))
    return names


def _load_or_make_ca(
    directory: Path, cluster: str, force: bool
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, bool]:
    key_path, cert_path = directory / "ca.key", directory / "ca.crt"
    if not force and key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes()), False
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"feedring {cluster} CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return key, cert, True


def ensure_certs(config: ClusterConfig, extra: dict[str, str] | None = None, force: bool = False) -> list[Path]:
    """Creates what is missing (everything with `force`); returns the certificate files written."""
    directory = config.tls.cert_dir
    ca_key, ca_cert, new_ca = _load_or_make_ca(directory, config.name, force)
    written = [directory / "ca.crt"] if new_ca else []
    now = datetime.datetime.now(datetime.UTC)
    for name, host in {**process_hosts(config), **(extra or {})}.items():
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        if not (force or new_ca) and cert_path.exists() and key_path.exists():
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=_LEAF_DAYS))
            .add_extension(x509.SubjectAlternativeName(_san(host)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write(key_path, _key_pem(key), private=True)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
        written.append(cert_path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.certs",
        description="Create a local CA and a certificate for every process of a cluster file (TLS, mTLS).",
    )
    parser.add_argument("--config", default="cluster.toml", metavar="FILE", help="cluster file (default cluster.toml)")
    parser.add_argument("--force", action="store_true", help="replace the CA and every certificate")
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="NAME=HOST",
        help="also a certificate for NAME at HOST (a new node)",
    )
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
        extra = dict(item.split("=", 1) for item in args.name)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError:
        print("error: --name takes NAME=HOST", file=sys.stderr)
        return 2
    written = ensure_certs(config, extra, args.force)
    where = config.tls.cert_dir
    if written:
        print(f"wrote {len(written)} certificate(s) in {where}: {', '.join(p.stem for p in written)} (keys mode 0600)")
    else:
        print(f"every certificate is already in {where} (--force replaces them)")
    if not config.tls.enabled:
        print(f"note: TLS is off in {config.path}; set `[tls] enabled = true` to use them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
