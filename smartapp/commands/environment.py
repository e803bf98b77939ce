"""What commands share: the settings as the service would read them, and how a failure is reported."""

from __future__ import annotations

import sys

from smartapp.settings import ConfigError, Settings
from smartapp.wiring import problems


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
    found = problems(settings, provider_checks=provider_checks)
    if found:
        raise CommandError(_problem_text(found))
    return settings


def fail(message: str) -> int:
    print(f"smartapp: {message}", file=sys.stderr)
    return 1


def _problem_text(problems: list[str]) -> str:
    return "configuration problems:\n" + "\n".join(f"  - {problem}" for problem in problems)
