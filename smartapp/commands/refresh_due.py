"""`smartapp refresh-due`: refresh every installation whose tokens are due, for a scheduler to run daily."""

from __future__ import annotations

import argparse
import re
import sys

from smartapp import logs
from smartapp.errors import SmartAppError
from smartapp.refresh_due import DEFAULT_WITHIN_SECONDS, run
from smartapp.settings import ConfigError, Settings


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)\Z")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """`3600`, `90m`, `1h`, `2d` -> seconds (argparse type)."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 3600, 90m, 1h, 2d)")
    return float(match.group(1)) * _UNIT[match.group(2)]


def _positive(text: str) -> int:
    """A whole number of at least 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `refresh-due` on the `smartapp` command's subparsers; it runs `main(args)`."""
    parser = subparsers.add_parser(
        "refresh-due", help="refresh tokens that expire soon or whose refresh token is older than 25 days",
        description="Refresh every installation whose access token expires within --within or whose refresh "
                    "token is older than 25 days. Safe to run on several hosts at once. Exit status 1 if any "
                    "refresh failed, 2 on a bad configuration.")
    parser.add_argument("--within", type=duration, default=float(DEFAULT_WITHIN_SECONDS),
                        help="refresh access tokens expiring within this time (default 1h)")
    parser.add_argument("--concurrency", type=_positive, default=8,
                        help="installations refreshed in parallel, in all (default 8)")
    parser.add_argument("--processes", type=_positive, default=1,
                        help="split the sweep over this many processes; one process uses one core, so raise it up "
                             "to the host's cores when a large sweep is CPU-bound (default 1)")
    parser.set_defaults(run=main)
    return parser


def main(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        logs.configure(settings.log_format)
        report = run(settings=settings, within_seconds=args.within, concurrency=args.concurrency,
                     processes=args.processes)
    except ConfigError as error:
        print("configuration problems:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except SmartAppError as error:
        print(f"refresh-due: cannot read the store ({error.reason})", file=sys.stderr)
        return 1
    print(f"refresh-due: {report.checked} installations checked, {report.refreshed} refreshed, "
          f"{report.already_fresh} already fresh, {len(report.needs_reauth)} need re-authorisation, "
          f"{len(report.failures)} failed")
    for failure in report.failures:
        print(f"  failed: {failure.installed_app_id} {failure.token_kind}: {failure.reason}", file=sys.stderr)
    return report.exit_code
