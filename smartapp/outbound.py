"""Outbound HTTP sessions that read proxy and CA settings from the environment once, not on every call."""

from __future__ import annotations

import os
from typing import TypeVar

import requests

SessionT = TypeVar("SessionT", bound=requests.Session)


def settle_environment(session: SessionT, url: str) -> SessionT:
    """Freeze the environment's proxies (for `url`'s host) and CA bundle into `session`.

    requests re-reads every proxy variable, NO_PROXY and .netrc on each call (about 0.2 ms, most of
    a token refresh's own CPU); the environment does not change while the service runs.
    """
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    return session
