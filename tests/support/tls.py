"""A self-signed certificate for 127.0.0.1, so loopback fakes can speak HTTPS as the real clouds do."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from testbed.keyserver import certificate_pem


def loopback_certificate(directory: Path) -> tuple[str, str]:
    """(certificate path, key path); the certificate is its own CA: point REQUESTS_CA_BUNDLE at it."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    pem = certificate_pem(key, not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=1),
                          common_name="127.0.0.1", extensions=(
                              (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
                              (x509.BasicConstraints(ca=True, path_length=None), True)))
    certificate_path, key_path = directory / "loopback.crt", directory / "loopback.key"
    certificate_path.write_bytes(pem)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(certificate_path), str(key_path)


def serve_tls(server, certificate: str, private_key: str) -> str:
    """Make a loopback fake (not yet started) speak HTTPS with this certificate; returns its https:// URL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, private_key)
    server._server.socket = context.wrap_socket(server._server.socket, server_side=True)
    return server.url.replace("http://", "https://", 1)
