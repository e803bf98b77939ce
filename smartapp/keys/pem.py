"""An RSA public key from PEM text (a public key or a certificate), checked the way signatures need it."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from smartapp.signature import MIN_KEY_BITS

_PEM_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


@dataclass(frozen=True)
class KeyMaterial:
    key: RSAPublicKey
    not_before: float | None  # certificate validity, epoch seconds; None for a bare public key
    not_after: float | None


def parse_pem(text: str | bytes) -> KeyMaterial:
    """The key of the first PEM block, with the certificate's validity; ValueError saying why not."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("the key text is not ASCII PEM") from None
    # Environment variables often carry a PEM with literal "\n" sequences instead of line breaks.
    text = text.replace("\\n", "\n")
    match = _PEM_RE.search(text)
    if match is None:
        raise ValueError("no PEM block found (expected -----BEGIN PUBLIC KEY----- or CERTIFICATE)")
    label = match.group(1)
    # Re-wrap at 64 characters: a PEM pasted onto one line is otherwise refused.
    body = "".join(match.group(2).split())
    wrapped = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    pem = f"-----BEGIN {label}-----\n{wrapped}\n-----END {label}-----\n".encode("ascii")
    not_before = not_after = None
    try:
        if label == "CERTIFICATE":
            certificate = x509.load_pem_x509_certificate(pem)
            key = certificate.public_key()
            not_before = certificate.not_valid_before_utc.timestamp()
            not_after = certificate.not_valid_after_utc.timestamp()
        elif label in ("PUBLIC KEY", "RSA PUBLIC KEY"):
            key = serialization.load_pem_public_key(pem)
        elif "PRIVATE" in label:
            raise ValueError("this is a private key; configure the public key SmartThings showed")
        else:
            raise ValueError(f"unsupported PEM block {label!r}; expected a public key or certificate")
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"the {label} PEM block could not be loaded: {type(exc).__name__}") from None
    except ValueError as exc:
        raise ValueError(f"the {label} PEM block could not be loaded: {exc}") from None
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"the key is {type(key).__name__}, but SmartThings signs with RSA")
    if key.key_size < MIN_KEY_BITS:
        raise ValueError(f"the RSA key has {key.key_size} bits; at least {MIN_KEY_BITS} are required")
    return KeyMaterial(key=key, not_before=not_before, not_after=not_after)


def load_public_key(text: str | bytes) -> RSAPublicKey:
    """An RSA (>= 2048 bit) key from a PEM public key (SPKI or PKCS#1) or certificate; ValueError if not."""
    return parse_pem(text).key


def openssh_md5_fingerprint(key: RSAPublicKey) -> str:
    """MD5 of the ssh-rsa wire blob as colon hex: the fingerprint in legacy `/SmartThings/…` keyIds."""
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    digest = hashlib.md5(base64.b64decode(line.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
