"""What account linking needs registered: the OAUTH setting's urlTemplate, and the redirect URI checks around it."""

from __future__ import annotations

from urllib.parse import urlsplit

from smartapp.oauth.authorize import authorize_url
from smartapp.oauth.presets import DEFAULT_REDIRECT_URI
from smartapp.oauth.provider import provider_config
from smartapp.settings import ConfigError, Settings

# Account-linking callbacks of SmartThings Schema (C2C) connectors: a different product.
SCHEMA_CALLBACK_HOSTS = frozenset({"c2c-us.smartthings.com", "c2c-eu.smartthings.com", "c2c-ap.smartthings.com"})
# What the configuration page puts in `state` for each installation.
STATE_PLACEHOLDER = "INSTALLED_APP_ID"


class IncompleteOAuth(Exception):
    """The provider is chosen but a value the authorize URL needs is missing; the message names it."""


def url_template(settings: Settings) -> tuple[str, bool]:
    """The authorize URL the configuration page serves (shared builder), and whether it adds PKCE."""
    try:
        config = provider_config(settings)
    except ConfigError as error:
        raise IncompleteOAuth("; ".join(error.problems)) from None
    if config is None:
        raise IncompleteOAuth("SMARTAPP_OAUTH_PROVIDER is not set")
    try:
        return authorize_url(config, state=STATE_PLACEHOLDER, code_verifier=None), config.pkce
    except ValueError as error:
        raise IncompleteOAuth(f"SMARTAPP_OAUTH_AUTHORIZE_URL/SCOPE: {error}") from None


def smartapp_callback(api_url: str) -> str:
    """SmartThings' OAuth callback for SmartApps on this API host (https://api.smartthings.com/oauth/callback)."""
    return api_url.rstrip("/") + "/oauth/callback" if api_url else DEFAULT_REDIRECT_URI


def redirect_uri_warning(redirect_uri: str, api_url: str) -> str | None:
    """Why a configured redirect URI would break account linking, or None when it is the SmartApp callback."""
    expected = smartapp_callback(api_url)
    host = urlsplit(redirect_uri).hostname or ""
    if host in SCHEMA_CALLBACK_HOSTS:
        return (f"{redirect_uri} is a SmartThings Schema (C2C) connector callback, not a SmartApp one: "
                f"register {expected} at the provider and unset SMARTAPP_OAUTH_REDIRECT_URI")
    if redirect_uri != expected:
        return (f"{redirect_uri} is not SmartThings' SmartApp callback: the browser would not come back to "
                f"SmartThings, so no OAUTH_CALLBACK would arrive; use {expected}")
    return None
