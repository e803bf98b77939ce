"""The development signing key: kept beside the SQLite file, trusted only by an instance in development mode."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from smartapp.errors import SignatureError
from smartapp.rejection_log import RejectionLogLimit

log = logging.getLogger(__name__)

# keyIds of this shape never match the ST_PADLOCK pattern or the legacy prefix, so an instance
# outside development mode refuses them like any other unknown id.
DEV_KEY_PREFIX = "/smartapp-dev/"

KeyResolve = Callable[[str], RSAPublicKey]


def dev_key_path(db_path: str) -> Path:
    """`smartapp.db` → `smartapp-dev-signing.keys` in the same directory (`*.keys` is git-ignored)."""
    path = Path(db_path)
    return path.with_name(path.stem + "-dev-signing.keys")


def dev_key_id(public_key: RSAPublicKey) -> str:
    """The keyId names the key (SHA-256 of its SPKI), so a simulator holding another key gets a clear refusal."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return DEV_KEY_PREFIX + hashlib.sha256(der).hexdigest()[:32]


def load_dev_key(path: str | Path) -> RSAPrivateKey:
    """The private key in `path`; FileNotFoundError if the instance has not created it yet."""
    data = Path(path).read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


def load_or_create_dev_key(path: str | Path) -> RSAPrivateKey:
    """Load the key, creating it (mode 0600) if missing; concurrent workers end up with the same key."""
    path = Path(path).absolute()
    try:
        return load_dev_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # mkstemp makes the file 0600 from the start; the hard link fails if another worker won the race.
    fd, temporary = tempfile.mkstemp(prefix=".smartapp-devkey-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
            log.warning("dev_key_created", extra={"path": str(path)})
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)
    return load_dev_key(path)


def trusting_dev_key(resolve: KeyResolve, public_key: RSAPublicKey) -> KeyResolve:
    """Wrap the key resolver so the dev keyId maps to the dev key; every other id is resolved as before.

    Only the key source changes: the Verifier still checks the header, Date, Digest and signature.
    """
    trusted_id = dev_key_id(public_key)
    rejection_log = RejectionLogLimit()  # one line per forged request would let a flood flood the log

    def resolve_with_dev_key(key_id: str) -> RSAPublicKey:
        if key_id == trusted_id:
            return public_key
        if key_id.startswith(DEV_KEY_PREFIX):
            if rejection_log.admit("unknown_dev_key"):
                log.warning("key_rejected reason=unknown_dev_key key_id=%r expected=%s", key_id[:100], trusted_id)
            raise SignatureError("unknown_key")
        return resolve(key_id)

    return resolve_with_dev_key
