"""The local control plane's PKI on disk: a CA, the API server's serving cert, client certs, SA keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from livemig.adapters.tls import CertificateAuthority, IssuedCert


@dataclass(frozen=True, slots=True)
class KeyPair:
    cert_path: Path
    key_path: Path


def _write(directory: Path, stem: str, cert_pem: bytes, key_pem: bytes) -> KeyPair:
    pair = KeyPair(directory / f"{stem}.crt", directory / f"{stem}.key")
    pair.cert_path.write_bytes(cert_pem)
    pair.key_path.write_bytes(key_pem)
    pair.key_path.chmod(0o600)
    return pair


def create_ca(directory: Path, name: str) -> tuple[CertificateAuthority, KeyPair]:
    ca = CertificateAuthority(name)
    return ca, _write(directory, name, ca.cert_pem, ca.key_pem)


def issue_cert(
    ca: CertificateAuthority,
    directory: Path,
    file_stem: str,
    common_name: str,
    *,
    organizations: tuple[str, ...] = (),
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    server: bool = False,
) -> KeyPair:
    issued: IssuedCert = ca.issue(
        common_name, organizations=organizations, dns_names=dns_names, ip_addresses=ip_addresses, server=server
    )
    return _write(directory, file_stem, issued.cert_pem, issued.key_pem)


def create_service_account_keys(directory: Path) -> KeyPair:
    """The RSA key pair kube-apiserver signs (and verifies) service-account tokens with; cert_path is the public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pair = KeyPair(directory / "sa.pub", directory / "sa.key")
    pair.cert_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    pair.key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pair.key_path.chmod(0o600)
    return pair
