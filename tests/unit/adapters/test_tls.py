"""The loopback PKI: certificates chain to their CA, carry the right SANs and usages, and serve real TLS."""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from livemig.adapters.tls import CertificateAuthority


def test_server_cert_is_issued_by_the_ca_with_sans_and_server_usage() -> None:
    ca = CertificateAuthority("test-ca")
    issued = ca.issue("api", dns_names=("localhost",), ip_addresses=("127.0.0.1",), server=True)
    leaf = x509.load_pem_x509_certificate(issued.cert_pem)
    root = x509.load_pem_x509_certificate(ca.cert_pem)
    leaf.verify_directly_issued_by(root)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).critical


def test_client_cert_names_user_and_groups() -> None:
    ca = CertificateAuthority("test-ca")
    leaf = x509.load_pem_x509_certificate(ca.issue("alice", organizations=("system:masters",)).cert_pem)
    assert leaf.subject.rfc4514_string() == "O=system:masters,CN=alice"
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_a_strict_python_client_completes_a_handshake_on_loopback() -> None:
    ca = CertificateAuthority("test-ca")
    issued = ca.issue("127.0.0.1", ip_addresses=("127.0.0.1",), server=True)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key, ca_file = Path(tmp) / "tls.crt", Path(tmp) / "tls.key", Path(tmp) / "ca.crt"
        cert.write_bytes(issued.cert_pem)
        key.write_bytes(issued.key_pem)
        ca_file.write_bytes(ca.cert_pem)
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)
        client_ctx = ssl.create_default_context(cafile=str(ca_file))
        client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")

        thread = threading.Thread(target=serve)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.recv(2) == b"ok"
        thread.join(timeout=10)
