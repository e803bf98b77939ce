"""Token calls to a standard RFC 6749 provider (generic, GitHub, LIFX) through Authlib's requests client."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from smartapp.errors import ProviderRejected, UpstreamUnavailable
from smartapp.outbound import settle_environment
from smartapp.grant import Grant, error_code, grant_from_token_response
from smartapp.oauth.provider import ProviderConfig

USER_AGENT = "smartapp/0.1 (SmartThings SmartApp)"


def _client_secret_basic(client: Any, method: str, uri: str, headers: dict, body: str) -> tuple:
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before Base64 (Authlib sends them raw).
    pair = f"{quote_plus(client.client_id, safe='')}:{quote_plus(client.client_secret or '', safe='')}"
    headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    return uri, headers, body


@contextlib.contextmanager
def _as_provider_errors() -> Iterator[None]:
    """Authlib and requests failures as our two kinds; only class names and statuses reach the detail."""
    try:
        yield
    except AuthlibBaseError as error:
        # Includes HTTP-200 bodies with an `error` member (GitHub) and RFC 6749 §5.2 error bodies.
        raise ProviderRejected(error_code(getattr(error, "error", None))) from None
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else 0
        if status >= 500 or status == 429:
            raise UpstreamUnavailable("oauth_provider_error", f"HTTP {status}") from None
        raise ProviderRejected("invalid_token_response", f"HTTP {status} without an OAuth error") from None
    except requests.Timeout as error:
        raise UpstreamUnavailable("oauth_provider_timeout", type(error).__name__) from None
    except requests.RequestException as error:
        raise UpstreamUnavailable("oauth_provider_unreachable", type(error).__name__) from None
    except ValueError:
        raise ProviderRejected("invalid_token_response", "token response is not a JSON object") from None


class StandardProvider:
    def __init__(self, config: ProviderConfig) -> None:
        if not config.token_url:
            raise ValueError("a standard provider needs a token URL")
        self.config = config

    def _session(self) -> OAuth2Session:
        # One session per call: Authlib sessions hold token state, and calls come from many threads.
        session = OAuth2Session(client_id=self.config.client_id, client_secret=self.config.client_secret,
                                token_endpoint_auth_method=self.config.auth_method)
        session.register_client_auth_method(("client_secret_basic", _client_secret_basic))
        session.headers["User-Agent"] = USER_AGENT  # LIFX integrations send one explicitly
        return settle_environment(session, self.config.token_url)

    def _timeouts(self, timeout: float) -> tuple[float, float]:
        return min(self.config.connect_timeout, timeout), timeout

    def exchange_code(self, *, code: str, code_verifier: str | None, redirect_uri: str, region: str | None,
                      timeout: float) -> Grant:
        """One attempt only: a code is single use, so a timeout is never retried."""
        with self._session() as session, _as_provider_errors():
            body = session.fetch_token(self.config.token_url, grant_type="authorization_code", code=code,
                                       redirect_uri=redirect_uri, code_verifier=code_verifier,
                                       timeout=self._timeouts(timeout), allow_redirects=False)
        return grant_from_token_response(dict(body), initial=True)

    def refresh(self, *, refresh_token: str, region: str | None, timeout: float) -> Grant:
        with self._session() as session, _as_provider_errors():
            body = dict(session.refresh_token(self.config.token_url, refresh_token=refresh_token,
                                              timeout=self._timeouts(timeout), allow_redirects=False))
        grant = grant_from_token_response(body, initial=False)
        if grant.refresh_token == refresh_token:
            # Authlib copies the old refresh token into a reply without one: that is no rotation.
            grant = Grant(access_token=grant.access_token, refresh_token=None, expires_in=grant.expires_in,
                          scope=grant.scope)
        return grant
