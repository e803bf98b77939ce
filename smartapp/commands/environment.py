"""What commands share: the settings as the service would read them, and the store opened without side effects."""

from __future__ import annotations

import os
import sys

from smartapp.oauth import provider_problems
from smartapp.settings import ConfigError, Settings
from smartapp.store import Store, TokenCipher, open_store
from smartapp.store.cipher import load_or_create_key_file


class CommandError(Exception):
    """A failure the user can fix; the message says how. Commands print it and exit 1."""


def load_settings(*, provider_checks: bool = True) -> Settings:
    """The environment plus `.env` in the working directory, exactly as the service reads them.

    `provider_checks=False` leaves an incomplete OAuth provider to the caller (register reports it in place).
    """
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        raise CommandError(_problem_text(error.problems)) from None
    # The provider's own checks too, so the release check fails before the app would refuse to start.
    problems = list(dict.fromkeys(settings.problems() + (provider_problems(settings) if provider_checks else [])))
    if problems:
        raise CommandError(_problem_text(problems))
    return settings


def open_existing_store(settings: Settings) -> Store:
    """The service's store; for SQLite only if the file exists, so a typo in a path creates nothing."""
    if settings.store_kind == "sqlite":
        if not os.path.exists(settings.db_path):
            raise CommandError(f"no embedded store at {os.path.abspath(settings.db_path)}: the service creates it "
                               "at its first start (or set SMARTAPP_DB_PATH to where it is)")
        if not settings.token_keys and not os.path.exists(settings.key_file_path):
            raise CommandError(f"the token key file {settings.key_file_path} is missing, so stored tokens cannot be "
                               "read: restore it, or set SMARTAPP_TOKEN_KEYS")
    keys = settings.token_keys or load_or_create_key_file(settings.key_file_path)
    return open_store(redis_url=settings.redis_url, sqlite_path=settings.db_path,
                      cipher=TokenCipher.from_env_value(keys), redis_options=settings.redis_options())


def fail(message: str) -> int:
    print(f"smartapp: {message}", file=sys.stderr)
    return 1


def _problem_text(problems: list[str]) -> str:
    return "configuration problems:\n" + "\n".join(f"  - {problem}" for problem in problems)
