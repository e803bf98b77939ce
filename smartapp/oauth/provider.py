"""The configured third-party provider: presets merged with settings, and the interface clients implement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from smartapp.grant import Grant
from smartapp.oauth.presets import PRESETS, TUYA_HOSTS
from smartapp.settings import ConfigError, Settings

AUTH_METHODS = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    title: str
    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str
    token_url: str | None         # Tuya: an OpenAPI base URL overriding the region host (tests)
    scope: str | None
    pkce: bool
    auth_method: str
    redirect_uri: str
    region: str | None = None     # Tuya data centre
    issuer: str | None = None     # exact RFC 9207 issuer, when known
    connect_timeout: float = 1.0
    call_timeout: float = 4.0     # leaves room in SmartThings' 10 s (docs/reliability.md#the-time-budget)


class Provider(Protocol):
    """A token endpoint client. Errors: ProviderRejected (the provider said no), UpstreamUnavailable."""

    config: ProviderConfig

    def exchange_code(self, *, code: str, code_verifier: str | None, redirect_uri: str, region: str | None,
                      timeout: float) -> Grant: ...

    def refresh(self, *, refresh_token: str, region: str | None, timeout: float) -> Grant: ...


def provider_config(settings: Settings, *, auth_method: str | None = None,
                    issuer: str | None = None) -> ProviderConfig | None:
    """The provider configuration, None when no provider is set; ConfigError names what is missing."""
    if not settings.oauth_provider:
        return None
    problems = provider_problems(settings)
    if problems:
        raise ConfigError(problems)
    preset = PRESETS[settings.oauth_provider]
    method = auth_method or settings.oauth_client_auth or preset.auth_method
    if preset.name != "tuya" and method not in AUTH_METHODS:
        raise ConfigError([f"OAuth client authentication must be one of {', '.join(AUTH_METHODS)}"])
    return ProviderConfig(
        name=preset.name,
        title=preset.title,
        client_id=settings.oauth_client_id or "",
        client_secret=settings.oauth_client_secret or "",
        authorize_url=settings.oauth_authorize_url or preset.authorize_url or "",
        token_url=settings.oauth_token_url or preset.token_url,
        scope=settings.oauth_scope if settings.oauth_scope is not None else preset.scope,
        pkce=preset.pkce,
        auth_method=method,
        redirect_uri=settings.oauth_redirect_uri,
        region=settings.tuya_region if preset.name == "tuya" else None,
        issuer=issuer or settings.oauth_issuer or preset.issuer,
    )


def provider_problems(settings: Settings) -> list[str]:
    """What keeps the configured provider from working, each naming the variable (for check-config too)."""
    name = settings.oauth_provider
    if not name:
        return []
    if name not in PRESETS:
        return [f"SMARTAPP_OAUTH_PROVIDER must be one of {', '.join(PRESETS)}"]
    preset, found = PRESETS[name], []
    if not settings.oauth_client_id:
        found.append(f"SMARTAPP_OAUTH_CLIENT_ID is required with SMARTAPP_OAUTH_PROVIDER={name}")
    if not settings.oauth_client_secret:
        found.append(f"SMARTAPP_OAUTH_CLIENT_SECRET is required with SMARTAPP_OAUTH_PROVIDER={name}")
    if not (settings.oauth_authorize_url or preset.authorize_url):
        hint = " (the H5 authorization page from the Tuya project console)" if name == "tuya" else ""
        found.append(f"SMARTAPP_OAUTH_AUTHORIZE_URL is required with SMARTAPP_OAUTH_PROVIDER={name}{hint}")
    if name != "tuya" and not (settings.oauth_token_url or preset.token_url):
        found.append(f"SMARTAPP_OAUTH_TOKEN_URL is required with SMARTAPP_OAUTH_PROVIDER={name}")
    if name == "tuya" and settings.tuya_region not in TUYA_HOSTS:
        found.append(f"SMARTAPP_TUYA_REGION must be one of {', '.join(TUYA_HOSTS)}")
    return found
