"""Development mode: SmartThings calls made with a simulator's tokens are answered here, never sent."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any
from urllib.parse import urlsplit

import requests

log = logging.getLogger(__name__)

# Tokens the simulator puts in INSTALL/UPDATE/EVENT. Real SmartThings tokens are UUIDs or JWTs, so the
# prefix cannot collide; a real token still reaches the real API even in development mode.
SIMULATED_TOKEN_PREFIX = "simulated-"
ACCESS_TOKEN_SECONDS = 24 * 3600


class SimulatorAwareSession(requests.Session):
    """A requests.Session that answers locally for a simulated bearer token or a simulated refresh token."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        headers = kwargs.get("headers") or {}
        data = kwargs.get("data")
        path = urlsplit(str(url)).path[:200]
        if str(headers.get("Authorization", "")).startswith("Bearer " + SIMULATED_TOKEN_PREFIX):
            # Without this, a simulated UPDATE would send a made-up token to api.smartthings.com and fail.
            log.info("simulated_api_call", extra={"method": str(method), "path": path})
            return _local_answer(str(url), {})
        if isinstance(data, dict) and str(data.get("refresh_token", "")).startswith(SIMULATED_TOKEN_PREFIX):
            # A simulated installation's refresh rotates to a new simulated pair, like the real endpoint.
            log.info("simulated_token_refresh", extra={"method": str(method), "path": path})
            return _local_answer(str(url), {
                "access_token": f"{SIMULATED_TOKEN_PREFIX}auth-{uuid.uuid4().hex}",
                "refresh_token": f"{SIMULATED_TOKEN_PREFIX}refresh-{uuid.uuid4().hex}",
                "token_type": "bearer", "expires_in": ACCESS_TOKEN_SECONDS,
            })
        return super().request(method, url, *args, **kwargs)


def _local_answer(url: str, body: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    response.url = url
    return response
