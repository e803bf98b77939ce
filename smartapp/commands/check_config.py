"""`smartapp check-config`: what the Procfile `release:` line runs; non-zero when the configuration cannot serve."""

from __future__ import annotations

import argparse
import sys

from smartapp.commands.environment import CommandError, load_settings


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except CommandError as error:
        print(error, file=sys.stderr)
        return 1
    mode = " (development mode)" if settings.dev_mode else ""
    print(f"configuration ok (store: {settings.store_kind}){mode}")
    return 0
