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


def size_pool(session: SessionT, connections: int) -> SessionT:
    """Keep up to `connections` idle connections per host in `session` (requests keeps 10).

    More threads than that still get connections, but the extra ones are closed instead of kept
    whenever the pool is full when they come back, and later calls pay a new TCP (and TLS) handshake.
    """
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(connections, requests.adapters.DEFAULT_POOLSIZE))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
