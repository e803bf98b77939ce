"""The record kept per installation: SmartThings and provider tokens, config, and bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass, field

# app_state is the SmartApp's own JSON: it may hold what the developer considers private, so it is sealed too.
SECRET_FIELDS = frozenset({"auth_token", "refresh_token", "provider_access_token", "provider_refresh_token",
                           "app_state"})


@dataclass(frozen=True)
class TokenPair:
    """One access/refresh token pair as stored, with the times that say whether it is still good."""

    access_token: str | None
    refresh_token: str | None
    expires_at: float | None
    refresh_issued_at: float | None


@dataclass(frozen=True)
class Installation:
    installed_app_id: str
    version: int = 0                       # bumped by every successful update; used for compare-and-set
    location_id: str | None = None
    locale: str | None = None
    config: dict = field(default_factory=dict)       # SmartThings ConfigMap as received
    permissions: list = field(default_factory=list)
    auth_token: str | None = None          # SmartThings access token (encrypted at rest)
    refresh_token: str | None = None       # SmartThings refresh token (encrypted at rest)
    auth_token_expires_at: float | None = None
    refresh_token_issued_at: float | None = None
    provider: str | None = None
    provider_access_token: str | None = None
    provider_refresh_token: str | None = None
    provider_token_expires_at: float | None = None
    provider_refresh_token_issued_at: float | None = None
    provider_scope: str | None = None
    provider_region: str | None = None     # the data centre the link was made in (Tuya)
    provider_user_id: str | None = None    # the linked account's id at the provider (Tuya uid)
    reauth_required: str | None = None     # reason code when a refresh token proved dead
    app_state: str | None = None           # the SmartApp's per-installation state, JSON (encrypted at rest)
    created_at: float | None = None
    updated_at: float | None = None

    @property
    def smartthings_tokens(self) -> TokenPair:
        return TokenPair(self.auth_token, self.refresh_token, self.auth_token_expires_at,
                         self.refresh_token_issued_at)

    @property
    def provider_tokens(self) -> TokenPair:
        return TokenPair(self.provider_access_token, self.provider_refresh_token, self.provider_token_expires_at,
                         self.provider_refresh_token_issued_at)
