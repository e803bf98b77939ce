"""Configuration: read once from the environment (and a development `.env`), validated in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def read_dotenv(path: str | Path) -> dict[str, str]:
    """Parse a `.env` file of KEY=VALUE lines; a missing file is simply empty."""
    values: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return values
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


@dataclass(frozen=True)
class Settings:
    """Every setting the service reads; docs/configuration.md lists each variable (names are a public contract)."""

    redis_url: str | None = None
    app: str | None = None  # the developer's SmartApp as module:attribute; unset: the bundled default app
    redis_ca_cert: str | None = None       # CA certificate(s) for rediss://: PEM text or @path
    redis_tls_verify: str | None = None    # full, ca or none; unset: full (or the URL's own ssl_* options)
    redis_wait_replicas: int = 0           # replicas that must have a write before it is acknowledged
    db_path: str = "smartapp.db"
    app_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    public_key: str | None = field(default=None, repr=False)
    key_server: str = "https://key.smartthings.com"
    api_url: str = "https://api.smartthings.com"
    token_url: str = "https://api.smartthings.com/oauth/token"
    public_path: str = "/"
    public_url: str | None = None
    token_keys: str | None = field(default=None, repr=False)
    oauth_provider: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = field(default=None, repr=False)
    oauth_authorize_url: str | None = None
    oauth_token_url: str | None = None
    oauth_scope: str | None = None
    oauth_redirect_uri: str = "https://api.smartthings.com/oauth/callback"
    oauth_client_auth: str | None = None  # client_secret_basic | client_secret_post; preset per provider
    oauth_issuer: str | None = None  # the provider's exact RFC 9207 `iss`, when known (mix-up defence)
    tuya_region: str = "us"
    log_format: str = "json"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    dev_mode: bool = False  # trust the local development signing key (smartapp simulate); never in production
    dyno: str | None = None  # set by Heroku on every dyno: a production sign with an ephemeral disk

    # Environment variable name for each field (a public contract: users' deployments set these names).
    ENV_NAMES = {
        "redis_url": "REDIS_URL",
        "log_format": "LOG_FORMAT",
        "dyno": "DYNO",
    }

    @classmethod
    def env_name(cls, field_name: str) -> str:
        return cls.ENV_NAMES.get(field_name, "SMARTAPP_" + field_name.upper())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, dotenv: str | Path | None = ".env") -> "Settings":
        """Real environment variables win over `.env`; empty values count as unset."""
        merged: dict[str, str] = dict(read_dotenv(dotenv)) if dotenv else {}
        merged.update(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        for item in fields(cls):
            raw = merged.get(cls.env_name(item.name))
            if raw is None or raw.strip() == "":
                continue
            raw = raw.strip()
            if item.name == "max_body_bytes":
                try:
                    values[item.name] = int(raw)
                except ValueError:
                    raise ConfigError([f"{cls.env_name(item.name)} must be a whole number of bytes"]) from None
            elif item.name == "redis_wait_replicas":
                try:
                    values[item.name] = int(raw)
                except ValueError:
                    raise ConfigError([f"{cls.env_name(item.name)} must be a whole number of replicas"]) from None
            elif item.name == "dev_mode":
                values[item.name] = _parse_switch(cls.env_name(item.name), raw)
            else:
                values[item.name] = raw
        return cls(**values)

    @property
    def store_kind(self) -> str:
        return "redis" if self.redis_url else "sqlite"

    @property
    def key_file_path(self) -> str:
        """Where development keeps its generated token key: beside the SQLite file."""
        return str(Path(self.db_path).with_suffix(".keys"))

    def public_key_text(self) -> str | None:
        """The pasted legacy key, read from a file when given as `@path`."""
        if self.public_key and self.public_key.startswith("@"):
            return Path(self.public_key[1:]).read_text(encoding="utf-8")
        return self.public_key

    def problems(self) -> list[str]:
        """What is wrong with the values themselves, each naming the variable and the fix.

        What needs another part to judge (the Redis target, the token keys, the pasted key, the
        provider) is added by wiring.problems, which every entry point asks.
        """
        found: list[str] = []
        for name in ("key_server", "api_url", "token_url", "oauth_redirect_uri", "public_url",
                     "oauth_authorize_url", "oauth_token_url"):
            value = getattr(self, name)
            if value is not None and not _is_http_url(value):
                found.append(f"{self.env_name(name)} must be an http(s) URL with a host")
        if not self.public_path.startswith("/") or "?" in self.public_path:
            found.append("SMARTAPP_PUBLIC_PATH must be a path starting with '/' and without a query")
        if self.max_body_bytes <= 0:
            found.append("SMARTAPP_MAX_BODY_BYTES must be positive")
        if self.log_format not in ("json", "text"):
            found.append("LOG_FORMAT must be 'json' or 'text'")
        if self.redis_url and not self.token_keys:
            found.append("SMARTAPP_TOKEN_KEYS is required with REDIS_URL: set it to one or more "
                         "comma-separated Fernet keys (python -c 'from cryptography.fernet import "
                         "Fernet; print(Fernet.generate_key().decode())')")
        if self.oauth_provider and self.oauth_provider not in ("generic", "github", "lifx", "tuya"):
            found.append("SMARTAPP_OAUTH_PROVIDER must be one of generic, github, lifx, tuya")
        found.extend(self.dev_mode_problems())
        return found

    def dev_mode_problems(self) -> list[str]:
        """Development mode trusts a key kept on this disk, so any sign of production refuses it."""
        if not self.dev_mode:
            return []
        signs = []
        if self.redis_url:
            signs.append("REDIS_URL is set (the production store)")
        if self.dyno:
            signs.append("DYNO is set (running on Heroku)")
        if self.public_url and not _is_loopback_url(self.public_url):
            signs.append("SMARTAPP_PUBLIC_URL points at a public host")
        return [f"SMARTAPP_DEV_MODE=1 cannot be combined with production settings: {sign}; "
                "unset SMARTAPP_DEV_MODE (development mode is for a local instance only)" for sign in signs]


class ConfigError(Exception):
    """The configuration cannot run; `problems` says what to fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _parse_switch(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError([f"{name} must be 1 or 0"])


def _is_loopback_url(value: str) -> bool:
    host = (urlsplit(value).hostname or "").lower()
    return host == "localhost" or host == "::1" or host.startswith("127.")


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
