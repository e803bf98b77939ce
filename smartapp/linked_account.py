"""The third-party account an installation linked: a valid access token and an authorised HTTP session."""

from __future__ import annotations

from typing import Any

import requests

from smartapp.deadline import Deadline
from smartapp.oauth.provider import Provider
from smartapp.oauth.tuya import TuyaProvider, TuyaRequestSigner
from smartapp.store import Installation
from smartapp.tokens import TokenKeeper

PROVIDER_CALL_TIMEOUT = 4.0


class LinkedAccount:
    """The provider's tokens for one installation, refreshed single-flight like the SmartThings pair."""

    def __init__(self, keeper: TokenKeeper, record: Installation, deadline: Deadline,
                 provider: Provider | None = None) -> None:
        self.provider: str = record.provider or ""
        self.region = record.provider_region
        self.user_id = record.provider_user_id
        self.scope = record.provider_scope
        self._keeper = keeper
        self._provider = provider
        self._installed_app_id = record.installed_app_id
        self._deadline = deadline
        self._session: requests.Session | None = None

    @property
    def access_token(self) -> str:
        """A token valid for at least another minute (refreshed first when it is not)."""
        return self._keeper.access_token(self._installed_app_id, "provider", deadline=self._deadline)

    def token_rejected(self, token: str) -> str:
        """The provider answered 401 to `token`: a refreshed one (ReauthRequired when none can be had)."""
        return self._keeper.refresh_rejected(self._installed_app_id, "provider", token, deadline=self._deadline)

    @property
    def api_url(self) -> str | None:
        """The provider's API host where it depends on the account (Tuya's data centre), else None."""
        return self._provider.base_url(self.region) if isinstance(self._provider, TuyaProvider) else None

    def authorize(self, token: str) -> requests.auth.AuthBase:
        """How a call carries `token`: Tuya signs each request with it, every other provider sends a bearer."""
        if isinstance(self._provider, TuyaProvider):
            return TuyaRequestSigner(self._provider.config, token)
        return _Bearer(token)

    @property
    def session(self) -> requests.Session:
        """A requests session that authorises each call with the account's token (signed for Tuya), bounded
        by the request's deadline, follows no redirects, and retries once with a refreshed token after a 401."""
        if self._session is None:
            self._session = _BearerSession(self)
        return self._session


class _BearerSession(requests.Session):
    def __init__(self, account: LinkedAccount) -> None:
        super().__init__()
        self._account = account

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        deadline = self._account._deadline
        timeout = deadline.timeout(cap=PROVIDER_CALL_TIMEOUT)
        kwargs.setdefault("timeout", (min(1.0, timeout), timeout))
        kwargs.setdefault("allow_redirects", False)
        token = self._account.access_token
        response = super().request(method, url, *args, auth=self._account.authorize(token), **kwargs)
        if response.status_code == 401:
            fresh = self._account.token_rejected(token)
            timeout = deadline.timeout(cap=PROVIDER_CALL_TIMEOUT)
            kwargs["timeout"] = (min(1.0, timeout), timeout)
            response = super().request(method, url, *args, auth=self._account.authorize(fresh), **kwargs)
        return response


class _Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request
