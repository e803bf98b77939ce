"""Sign a request the way SmartThings does (draft-cavage, rsa-sha256), for the lifecycle simulator."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
from email.utils import format_datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

SIGNED_HEADERS = "(request-target) digest date"


def http_date(when: float) -> str:
    """RFC 1123 with the `UTC` zone name SmartThings sends (not `GMT`)."""
    stamp = dt.datetime.fromtimestamp(int(when), tz=dt.timezone.utc)
    return format_datetime(stamp, usegmt=True).replace("GMT", "UTC")


def signed_headers(*, body: bytes, private_key: RSAPrivateKey, key_id: str, path: str = "/",
                   method: str = "post", now: float | None = None) -> dict[str, str]:
    """The Authorization, Digest and Date headers for `body` sent to `path` (no query: it is not signed)."""
    digest = "SHA256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
    date = http_date(time.time() if now is None else now)
    message = f"(request-target): {method.lower()} {path}\ndigest: {digest}\ndate: {date}"
    signature = base64.b64encode(private_key.sign(message.encode("latin-1"), padding.PKCS1v15(), hashes.SHA256()))
    authorization = (f'Signature keyId="{key_id}",signature="{signature.decode("ascii")}",'
                     f'headers="{SIGNED_HEADERS}",algorithm="rsa-sha256"')
    return {"Authorization": authorization, "Digest": digest, "Date": date, "Content-Type": "application/json"}
