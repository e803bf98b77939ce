"""The SmartThings REST transport: one bounded call for the API client, registration confirmation, token refresh."""

from __future__ import annotations

import logging
from typing import Any, Mapping
from urllib.parse import urlsplit

import requests

from smartapp.deadline import Deadline
from smartapp.errors import ProviderRejected, UpstreamUnavailable
from smartapp.grant import Grant, error_code, grant_from_token_response
from smartapp.outbound import settle_environment

log = logging.getLogger(__name__)


class SmartThingsClient:
    """A thin client over one requests.Session; every call has a timeout bounded by the request's deadline."""

    def __init__(
        self,
        *,
        api_url: str,
        session: requests.Session | None = None,
        connect_timeout: float = 1.0,
        read_timeout: float = 3.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        api = urlsplit(self.api_url)
        self._api_origin = (api.scheme, api.hostname, api.port)
        self.session = session or settle_environment(requests.Session(), self.api_url)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    def send(self, method: str, path: str, *, token: str, deadline: Deadline, json: Any = None,
             params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None) -> requests.Response:
        """One call to `api_url + path` as `token`; any HTTP status comes back, only a transport failure raises.

        `path` must start with '/': it is appended to the configured API URL, never parsed as a URL.
        """
        timeout = deadline.timeout(cap=self.read_timeout)
        sent_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})}
        try:
            return self.session.request(
                method,
                self.api_url + path,
                json=json,
                params=params,
                headers=sent_headers,
                timeout=(min(self.connect_timeout, timeout), timeout),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            # Only the exception class: its text can carry the URL and headers.
            raise UpstreamUnavailable("smartthings_unreachable", type(error).__name__) from None

    def refresh_token(self, refresh_token: str, *, token_url: str, client_id: str, client_secret: str,
                      timeout: float) -> Grant:
        """One refresh at the SmartThings token endpoint; both tokens come back new and the old refresh token dies."""
        try:
            response = self.session.post(
                token_url,
                data={"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token},
                auth=(client_id, client_secret),
                headers={"Accept": "application/json"},
                timeout=(min(self.connect_timeout, timeout), timeout),
                allow_redirects=False,
            )
        except requests.Timeout as error:
            raise UpstreamUnavailable("smartthings_token_timeout", type(error).__name__) from None
        except requests.RequestException as error:
            raise UpstreamUnavailable("smartthings_token_unreachable", type(error).__name__) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise UpstreamUnavailable("smartthings_token_error", f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "error" in body:
            raise ProviderRejected(error_code(body["error"]), f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise UpstreamUnavailable("smartthings_token_error", f"HTTP {response.status_code}")
        return grant_from_token_response(body, initial=False)

    def confirmation_url_allowed(self, url: str) -> bool:
        """Only an https (or configured-scheme) URL on the configured API host may be fetched (no SSRF)."""
        try:
            parts = urlsplit(url)
            origin = (parts.scheme, parts.hostname, parts.port)
        except ValueError:
            return False
        return origin == self._api_origin and not parts.username and not parts.password

    def confirm_registration(self, url: str, *, deadline: Deadline) -> int:
        """GET the confirmationUrl once, redirects not followed; returns the status code."""
        timeout = deadline.timeout(cap=2.0)
        try:
            response = self.session.get(url, timeout=(min(self.connect_timeout, timeout), timeout),
                                        allow_redirects=False)
        except requests.RequestException as error:
            raise UpstreamUnavailable("confirmation_unreachable", type(error).__name__) from None
        return response.status_code
