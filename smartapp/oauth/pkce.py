"""PKCE (RFC 7636): a high-entropy verifier and its S256 challenge."""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_verifier() -> str:
    # 48 random bytes -> 64 characters of [A-Za-z0-9_-], inside RFC 7636's 43..128.
    return secrets.token_urlsafe(48)


def s256_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
