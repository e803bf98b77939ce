"""`Context`: what every handler gets (ids, locale, typed config, state, deadline, API client, linked account)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Mapping, Protocol

from smartapp.api import SmartThingsApi, TokenSource
from smartapp.config_values import ConfigValues
from smartapp.deadline import Deadline
from smartapp.errors import ReauthRequired
from smartapp.linked_account import LinkedAccount
from smartapp.logs import annotate
from smartapp.oauth import Provider
from smartapp.smartthings import SmartThingsClient
from smartapp.state import InstallationState
from smartapp.store import Installation, Store
from smartapp.tokens import TokenKeeper


class Services(Protocol):
    """What a context acts through: the service's long-lived parts (handlers.services.Services has them)."""

    store: Store
    smartthings: SmartThingsClient
    oauth: Provider | None
    tokens: TokenKeeper | None


def keeper_of(services: Services) -> TokenKeeper:
    if services.tokens is None:
        raise ReauthRequired(detail="no token keeper configured")
    return services.tokens


class LifecycleToken:
    """The token a lifecycle request carries: used for that request only, never refreshed or stored."""

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self, deadline: Deadline) -> str:
        return self._token

    def after_unauthorized(self, token: str, deadline: Deadline) -> str | None:
        return None


class StoredToken:
    """The installation's stored token, refreshed (single-flight) before it expires and once after a 401."""

    def __init__(self, services: Services, installed_app_id: str) -> None:
        self._services = services
        self._installed_app_id = installed_app_id

    def token(self, deadline: Deadline) -> str:
        return keeper_of(self._services).access_token(self._installed_app_id, deadline=deadline)

    def after_unauthorized(self, token: str, deadline: Deadline) -> str | None:
        return keeper_of(self._services).refresh_rejected(self._installed_app_id, "smartthings", token,
                                                          deadline=deadline)


class Context:
    """One installation as a handler sees it. The API client, state and linked account load on first use."""

    def __init__(self, *, services: Services, installed_app_id: str, location_id: str | None,
                 locale: str | None, config: Mapping[str, Any] | None, permissions: Sequence[str],
                 deadline: Deadline, tokens: TokenSource | None,
                 record: Installation | None = None) -> None:
        self.installed_app_id = installed_app_id
        self.locale = locale
        self.config = ConfigValues(config)
        self.deadline = deadline
        self._location_id = location_id
        self._permissions = tuple(permissions)
        self._from_store = False
        self._services = services
        self._tokens = tokens
        self._record = record
        self._api: SmartThingsApi | None = None
        self._state: InstallationState | None = None
        self._linked: LinkedAccount | None | bool = False  # False: not looked up yet

    @classmethod
    def from_store_lazily(cls, *, services: Services, installed_app_id: str | None, locale: str | None,
                          config: Mapping[str, Any], deadline: Deadline) -> "Context":
        """A configuration page's context: what the request lacks (location, permissions, token) comes from
        the stored installation, read only if the page asks for it (a first install has none)."""
        context = cls(services=services, installed_app_id=installed_app_id or "", location_id=None, locale=locale,
                      config=config, permissions=(), deadline=deadline, tokens=None)
        context._from_store = True
        return context

    def _load_from_store(self) -> None:
        self._from_store = False
        record = self._stored_record()
        if record is not None:
            self._location_id, self._permissions = record.location_id, tuple(record.permissions)

    def annotate(self, **fields: object) -> None:
        """Add fields to this request's log line: what happened, for the price of no line of its own.

        Outside a webhook request (in `installation()`), the fields are logged as a line of their own.
        Later values replace earlier ones of the same name; names the line uses itself (`status`,
        `installedAppId`, ...) and more than 16 fields raise ValueError.
        """
        annotate(fields)

    @property
    def location_id(self) -> str | None:
        if self._from_store:
            self._load_from_store()
        return self._location_id

    @property
    def permissions(self) -> tuple[str, ...]:
        """The scopes the user granted (device grants included), as the installation reported them."""
        if self._from_store:
            self._load_from_store()
        return self._permissions

    @property
    def api(self) -> SmartThingsApi:
        """The SmartThings API, acting with this context's token (see `LifecycleToken`, `StoredToken`)."""
        if self._api is None:
            tokens = self._tokens or StoredToken(self._services, self.installed_app_id)
            self._api = SmartThingsApi(http=self._services.smartthings, installed_app_id=self.installed_app_id,
                                       location_id=self.location_id, tokens=tokens, deadline=self.deadline,
                                       permissions=self.permissions, locale=self.locale)
        return self._api

    @property
    def state(self) -> InstallationState:
        """A small JSON dict kept per installation (encrypted at rest, deleted at UNINSTALL)."""
        if self._state is None:
            self._state = InstallationState.from_record(self._stored_record())
        return self._state

    @property
    def linked_account(self) -> LinkedAccount | None:
        """The third-party account linked through the OAUTH setting, or None when none is linked."""
        if self._linked is False:
            record = self._stored_record()
            linked = record is not None and record.provider is not None and self._services.oauth is not None \
                and record.provider == self._services.oauth.config.name and record.provider_access_token is not None
            self._linked = LinkedAccount(keeper_of(self._services), record, self.deadline,
                                          self._services.oauth) if linked else None
        return self._linked  # type: ignore[return-value]

    def _stored_record(self) -> Installation | None:
        """The stored installation, read once; None before INSTALL (a first configuration)."""
        if self._record is None and self.installed_app_id:
            self._record = self._services.store.get(self.installed_app_id)
        return self._record

    def save(self) -> None:
        """Write what the handlers changed (the state), once, after they ran."""
        if self._state is not None and self._state.changed:
            self._services.store.update(self.installed_app_id, {"app_state": self._state.encode()})
            self._state.changed = False


def context_for(services: Services, record: Installation, deadline: Deadline,
                tokens: TokenSource | None = None) -> Context:
    """A context from a stored installation (proactive work, pages of an installation that exists)."""
    return Context(services=services, installed_app_id=record.installed_app_id, location_id=record.location_id,
                   locale=record.locale, config=record.config, permissions=record.permissions,
                   deadline=deadline, tokens=tokens, record=record)

