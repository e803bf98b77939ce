"""Provider presets as data: endpoints, scope, PKCE support and client authentication, in one table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """What is known about a provider before any setting: the env variables override the URLs and scope."""

    name: str
    title: str                     # shown to the user on the configuration page
    authorize_url: str | None      # None: must come from SMARTAPP_OAUTH_AUTHORIZE_URL
    token_url: str | None          # None: must come from SMARTAPP_OAUTH_TOKEN_URL (Tuya: per region)
    scope: str | None
    # Send S256 PKCE only where the provider documents it (docs/protocol.md#third-party-providers).
    pkce: bool
    auth_method: str               # client_secret_basic | client_secret_post | tuya_signature
    issuer: str | None = None      # RFC 9207 `iss` it sends, when known exactly


PRESETS: dict[str, Preset] = {
    # RFC 6749: every AS must accept client_secret_basic (§2.3.1); PKCE unknown to an AS is ignored (§3.1).
    "generic": Preset(name="generic", title="your account", authorize_url=None, token_url=None, scope=None,
                      pkce=True, auth_method="client_secret_basic"),
    # GitHub: credentials in the form, PKCE S256 since July 2025, no `iss` in the redirect.
    "github": Preset(name="github", title="GitHub", authorize_url="https://github.com/login/oauth/authorize",
                     token_url="https://github.com/login/oauth/access_token", scope=None,
                     pkce=True, auth_method="client_secret_post"),
    # LIFX partner OAuth: the scope LIFX assigns, credentials in the form, PKCE not documented.
    "lifx": Preset(name="lifx", title="LIFX", authorize_url="https://cloud.lifx.com/oauth/authorize",
                   token_url="https://cloud.lifx.com/oauth/token", scope="remote_control:all",
                   pkce=False, auth_method="client_secret_post"),
    # Tuya: the H5 authorize page comes from the project console; token calls are signed GETs per region.
    "tuya": Preset(name="tuya", title="Tuya / Smart Life", authorize_url=None, token_url=None, scope=None,
                   pkce=False, auth_method="tuya_signature"),
}

# Tuya OpenAPI host per data centre, as Tuya's official SDKs list them.
TUYA_HOSTS: dict[str, str] = {
    "cn": "https://openapi.tuyacn.com",
    "us": "https://openapi.tuyaus.com",
    "us-e": "https://openapi-ueaz.tuyaus.com",
    "eu": "https://openapi.tuyaeu.com",
    "eu-w": "https://openapi-weaz.tuyaeu.com",
    "in": "https://openapi.tuyain.com",
}

DEFAULT_REDIRECT_URI = "https://api.smartthings.com/oauth/callback"
