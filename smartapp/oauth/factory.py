"""The configured provider's token client: Authlib for the standard providers, a signed client for Tuya."""

from __future__ import annotations

from smartapp.oauth.authorize import authorize_url
from smartapp.oauth.provider import Provider, provider_config
from smartapp.oauth.standard import StandardProvider
from smartapp.oauth.tuya import TuyaProvider
from smartapp.settings import ConfigError, Settings


def build_provider(settings: Settings, *, auth_method: str | None = None,
                   issuer: str | None = None) -> Provider | None:
    """The client for the configured provider: Authlib for standard ones, a signed client for Tuya."""
    config = provider_config(settings, auth_method=auth_method, issuer=issuer)
    if config is None:
        return None
    try:  # the longest URL a page will carry: too long for SmartThings is a start-up error, not a 500 later
        authorize_url(config, state="0" * 36, code_verifier="0" * 64 if config.pkce else None)
    except ValueError as error:
        raise ConfigError([f"SMARTAPP_OAUTH_AUTHORIZE_URL/SCOPE: {error}"]) from None
    if config.name == "tuya":
        return TuyaProvider(config)
    return StandardProvider(config)
