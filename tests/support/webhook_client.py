"""Posting signed lifecycle bodies to the Flask test client, the way SmartThings would."""

from __future__ import annotations

import json

from testbed.signing import Signer


def post_signed(client, signer: Signer, body: dict | bytes, *, path: str = "/", headers: dict | None = None, **sign):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signed = signer.headers(raw, path=sign.pop("signed_path", path), **sign)
    signed.update(headers or {})
    return client.post(path, data=raw, headers=signed)
