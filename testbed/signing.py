"""Signs requests exactly as SmartThings does (draft-cavage, rsa-sha256), with a key it publishes as a certificate."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from email.utils import format_datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def http_date(when: float) -> str:
    """RFC 1123 date with the `UTC` zone name that SmartThings sends."""
    stamp = dt.datetime.fromtimestamp(int(when), tz=dt.timezone.utc)
    return format_datetime(stamp, usegmt=True).replace("GMT", "UTC")


@dataclass
class TestKey:
    """An RSA key, a self-signed certificate for it and a keyId in the real ST_PADLOCK form."""

    private_key: rsa.RSAPrivateKey
    certificate_pem: bytes
    public_key_pem: bytes
    key_id: str

    @classmethod
    def generate(cls, region: str = "test1", bits: int = 2048) -> "TestKey":
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        serial = x509.random_serial_number()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "key.smartthings.com")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        hex_serial = format(serial, "040x")[-40:]
        key_id = f"/pl/{region}/" + "-".join(hex_serial[i : i + 2] for i in range(0, 40, 2))
        return cls(
            private_key=key,
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM),
            public_key_pem=key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            key_id=key_id,
        )


@dataclass
class Signer:
    """Builds valid-by-default signed headers; each override changes exactly one thing."""

    key: TestKey
    clock: callable = field(default=None)

    def headers(
        self,
        body: bytes | dict,
        *,
        path: str = "/",
        method: str = "post",
        date: str | None = None,
        now: float | None = None,
        digest: str | None = None,
        digest_prefix: str = "SHA256=",
        key_id: str | None = None,
        algorithm: str = "rsa-sha256",
        signed_headers: str = "(request-target) digest date",
        private_key: rsa.RSAPrivateKey | None = None,
        signature: str | None = None,
    ) -> dict[str, str]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        if date is None:
            import time

            date = http_date(now if now is not None else (self.clock() if self.clock else time.time()))
        if digest is None:
            digest = digest_prefix + base64.b64encode(hashlib.sha256(raw).digest()).decode()
        values = {"digest": digest, "date": date}
        lines = []
        for name in signed_headers.split():
            if name == "(request-target)":
                lines.append(f"(request-target): {method.lower()} {path}")
            else:
                lines.append(f"{name}: {values.get(name, '')}")
        if signature is None:
            signer_key = private_key or self.key.private_key
            raw_sig = signer_key.sign("\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())
            signature = base64.b64encode(raw_sig).decode()
        authorization = (
            f'Signature keyId="{key_id or self.key.key_id}",signature="{signature}",'
            f'headers="{signed_headers}",algorithm="{algorithm}"'
        )
        return {
            "Authorization": authorization,
            "Digest": digest,
            "Date": date,
            "Content-Type": "application/json",
            "X-ST-Correlation": "corr-test-0001",
        }
