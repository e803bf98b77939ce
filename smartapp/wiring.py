"""Settings become the long-lived services here (cipher, store, clients, token keeper), for the service and tools."""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Mapping

from smartapp.app_loader import check as check_app, load_app
from smartapp.application import SmartApp
from smartapp.devapi import SimulatorAwareSession
from smartapp.errors import ProviderRejected, StoreUnavailable
from smartapp.grant import Grant
from smartapp.handlers.services import Services
from smartapp.keys import load_public_key
from smartapp.oauth import Provider, build_provider, provider_problems
from smartapp.settings import ConfigError, Settings
from smartapp.smartthings import SmartThingsClient
from smartapp.store import Installation, Store, open_store
from smartapp.store.cipher import TokenCipher, load_or_create_key_file
from smartapp.store.redis_target import RedisOptions, target_problems
from smartapp.tokens import PROVIDER, SMARTTHINGS, Refresher, TokenKeeper

log = logging.getLogger(__name__)


def merged_environment(config: Mapping[str, Any] | None) -> dict[str, str]:
    """The process environment with the caller's overrides, named as environment variables, on top."""
    return {**os.environ, **{name: str(value) for name, value in (config or {}).items()}}


# --- configuration problems -------------------------------------------------------------------------


def problems(settings: Settings, *, provider_checks: bool = True) -> list[str]:
    """Every configuration problem, each naming the variable and the fix (the service and every command ask this).

    `provider_checks=False` leaves an incomplete OAuth provider to the caller (`register` reports it in place).
    """
    found = settings.problems()
    if settings.redis_url:
        found.extend(target_problems(settings.redis_url, redis_options(settings)))
    if settings.token_keys:
        try:
            TokenCipher.from_env_value(settings.token_keys)
        except ValueError:
            found.append("SMARTAPP_TOKEN_KEYS must be comma-separated url-safe base64 32-byte Fernet keys")
    if settings.public_key:
        try:
            load_public_key(settings.public_key_text() or "")
        except (OSError, ValueError) as error:
            found.append(f"SMARTAPP_PUBLIC_KEY cannot be used: {error}")
    if provider_checks:
        found.extend(provider_problems(settings))
    return list(dict.fromkeys(found))  # the provider's name is judged by both


def checked(settings: Settings, *, provider_checks: bool = True) -> Settings:
    """`settings` when they can run; ConfigError naming every problem otherwise."""
    found = problems(settings, provider_checks=provider_checks)
    if found:
        raise ConfigError(found)
    return settings


def missing_store_problems(settings: Settings) -> list[str]:
    """For tools: an embedded store or key file that is not there (a typo in a path, a lost key file)."""
    if settings.store_kind != "sqlite":
        return []
    if not os.path.exists(settings.db_path):
        # Run from another directory, a relative path would otherwise make a new, empty store.
        return [f"no embedded store at {os.path.abspath(settings.db_path)}: the service creates it at its first "
                "start; run from the service's directory or set SMARTAPP_DB_PATH (or REDIS_URL) as the service "
                "has it"]
    if not settings.token_keys and not os.path.exists(settings.key_file_path):
        return [f"the token key file {settings.key_file_path} is missing, so stored tokens cannot be read: "
                "restore it, or set SMARTAPP_TOKEN_KEYS"]
    return []


# --- the store ---------------------------------------------------------------------------------------


def redis_options(settings: Settings) -> RedisOptions:
    """The SMARTAPP_REDIS_* settings as the Redis store takes them."""
    return RedisOptions(ca_cert=settings.redis_ca_cert, tls_verify=settings.redis_tls_verify,
                        wait_replicas=settings.redis_wait_replicas)


def build_cipher(settings: Settings) -> TokenCipher:
    if settings.token_keys:
        return TokenCipher.from_env_value(settings.token_keys)
    # Development on the embedded store: a key generated once and kept beside the database file.
    return TokenCipher.from_env_value(load_or_create_key_file(settings.key_file_path))


def open_configured_store(settings: Settings, *, clock: Callable[[], float] = time.time) -> Store:
    """The store the settings name (Redis, or the SQLite file, created at the first start)."""
    return open_store(redis_url=settings.redis_url, sqlite_path=settings.db_path, cipher=build_cipher(settings),
                      clock=clock, redis_options=redis_options(settings))


def open_existing_store(settings: Settings) -> Store:
    """The service's store for a tool: ConfigError instead of creating a SQLite file or a key file."""
    missing = missing_store_problems(settings)
    if missing:
        raise ConfigError(missing)
    return open_configured_store(settings)


# --- tokens ------------------------------------------------------------------------------------------


def smartthings_refresher(client: SmartThingsClient, settings: Settings) -> Refresher:
    """Refreshes with the SmartApp's own client (Basic auth) at SMARTAPP_TOKEN_URL."""
    def refresh(record: Installation, timeout: float) -> Grant:
        if not settings.client_id or not settings.client_secret:
            raise ProviderRejected("client_not_configured", "SMARTAPP_CLIENT_ID/SMARTAPP_CLIENT_SECRET unset")
        return client.refresh_token(record.refresh_token or "", token_url=settings.token_url,
                                    client_id=settings.client_id, client_secret=settings.client_secret,
                                    timeout=timeout)
    return refresh


def provider_refresher(provider: Provider) -> Refresher:
    """Refreshes at the provider the installation linked with, in the data centre it linked in."""
    def refresh(record: Installation, timeout: float) -> Grant:
        if record.provider != provider.config.name:
            raise ProviderRejected("provider_changed", "the installation linked another provider")
        return provider.refresh(refresh_token=record.provider_refresh_token or "", region=record.provider_region,
                                timeout=timeout)
    return refresh


def build_keeper(*, store: Store, smartthings: SmartThingsClient, settings: Settings, provider: Provider | None,
                 clock: Callable[[], float] = time.time) -> TokenKeeper:
    refreshers = {SMARTTHINGS.name: smartthings_refresher(smartthings, settings)}
    if provider is not None:
        refreshers[PROVIDER.name] = provider_refresher(provider)
    return TokenKeeper(store=store, refreshers=refreshers, clock=clock)


# --- everything ----------------------------------------------------------------------------------------


def build_services(settings: Settings, *, app: SmartApp | None = None,
                   clock: Callable[[], float] = time.time) -> Services:
    """Everything a request or a proactive call needs; `settings` must already be `checked`."""
    provider = build_provider(settings)  # ConfigError names a missing client id, URL or region
    if app is not None:
        check_app(app)
    smartapp = app if app is not None else load_app(settings.app)
    store = open_configured_store(settings, clock=clock)
    try:
        # Keys that cannot read this store must stop the start, not quietly make every token unreadable.
        store.verify_keys()
    except StoreUnavailable as error:
        log.warning("store_unreachable_at_start", extra={"store": store.describe(), "detail": error.detail})
    smartthings = SmartThingsClient(api_url=settings.api_url,
                                    session=SimulatorAwareSession() if settings.dev_mode else None)
    return Services(
        store=store,
        smartthings=smartthings,
        settings=settings,
        clock=clock,
        app=smartapp,
        oauth=provider,
        tokens=build_keeper(store=store, smartthings=smartthings, settings=settings, provider=provider, clock=clock),
    )
