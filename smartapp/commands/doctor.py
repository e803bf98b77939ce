"""`smartapp doctor`: check a deployment end to end and say how to fix each problem found."""

from __future__ import annotations

import argparse
import os

import requests

from smartapp.checks import FAIL, WARN, Finding
from smartapp.checks.config import config_findings
from smartapp.checks.network import network_findings
from smartapp.checks.store import store_findings
from smartapp.settings import ConfigError, Settings, read_dotenv

HEADLINE = ("smartapp doctor: a webhook SmartApp (WEBHOOK_SMART_APP) service, installed from the SmartThings app, "
            "optionally linking a third-party account")


def findings(*, offline: bool) -> list[Finding]:
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        # Unparseable values stop every other check: they all need the settings.
        return [Finding(FAIL, "config", problem) for problem in error.problems]
    environ = {**read_dotenv(".env"), **os.environ}  # as the service sees it
    found = config_findings(settings, environ) + store_findings(settings, environ)
    if not offline:
        found += network_findings(settings, requests.Session())
    return found


def print_findings(found: list[Finding]) -> None:
    for finding in found:
        print(f"{finding.level:<5} {finding.topic:<17} {finding.message}")
        if finding.fix and finding.level != "ok":
            print(f"{'':<23} fix: {finding.fix}")


def run(args: argparse.Namespace) -> int:
    print(HEADLINE)
    found = findings(offline=args.offline)
    print_findings(found)
    failed = sum(1 for finding in found if finding.level == FAIL)
    warned = sum(1 for finding in found if finding.level == WARN)
    print(f"{failed} problem(s), {warned} warning(s){' (network checks skipped: --offline)' if args.offline else ''}")
    return 1 if failed or (args.strict and warned) else 0
