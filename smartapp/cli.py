"""The `smartapp` console script: operational commands around the service."""

from __future__ import annotations

import argparse
import sys

from smartapp.settings import ConfigError, Settings


def check_config(args: argparse.Namespace) -> int:
    """What the Procfile `release:` line runs: non-zero when the configuration cannot serve."""
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        problems = error.problems
    else:
        problems = settings.problems()
    if problems:
        print("configuration problems:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"configuration ok (store: {settings.store_kind})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smartapp", description="SmartThings webhook SmartApp service tools")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-config", help="validate the environment's configuration (release check)")
    check.set_defaults(run=check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
