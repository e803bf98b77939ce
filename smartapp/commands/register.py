"""`smartapp register`: everything to paste into the Developer Workspace, or an `apps:create -i` file."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

from smartapp import simulation
from smartapp.app_loader import load_app
from smartapp.application import SmartApp
from smartapp.checks.config import is_ip_address
from smartapp.commands.environment import CommandError, fail, load_settings
from smartapp.oauth.registration import IncompleteOAuth, redirect_uri_warning, smartapp_callback, url_template
from smartapp.pages import scopes_of
from smartapp.settings import ConfigError, Settings
from smartapp.signature import strip_query


def scopes(app: SmartApp) -> list[str]:
    """The app scopes its settings and handlers need (e.g. r: to read a switch, x: to command it)."""
    pages, _ = simulation.page_settings(app)
    return sorted({*app.initialize_permissions(), *scopes_of(pages)})


def check_target_url(url: str | None) -> str:
    """SmartThings only calls public https URLs with a certificate for a host name (else TargetTimeoutError)."""
    if not url:
        raise CommandError("no target URL: set SMARTAPP_PUBLIC_URL (or pass --target-url) to the public https URL "
                           "SmartThings will call, e.g. your tunnel's https address")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise CommandError(f"the target URL must be https://, got {url!r}: SmartThings refuses plain http")
    host = parts.hostname
    if host == "localhost" or is_ip_address(host):
        raise CommandError(f"the target URL's host {host!r} is not a public name with a certificate: SmartThings "
                           "answers TargetTimeoutError; use a tunnel (e.g. ngrok) or your deployment's host name")
    return url


def default_app_name(target_url: str) -> str:
    host = urlsplit(target_url).hostname or "local"
    return ("smartapp-" + re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-"))[:60]


def manifest(*, target_url: str, app_name: str, display_name: str, description: str, scope: list[str]) -> dict:
    """The body for `smartthings apps:create -i FILE`; JSON is also valid YAML."""
    return {
        "appName": app_name,
        "displayName": display_name,
        "description": description[:250],
        "appType": "WEBHOOK_SMART_APP",
        "classifications": ["AUTOMATION"],
        "singleInstance": False,
        "webhookSmartApp": {"targetUrl": target_url, "signatureType": "ST_PADLOCK"},
        "oauth": {"clientName": display_name, "scope": scope},
    }


def oauth_lines(settings: Settings) -> tuple[list[str], bool]:
    """The account-linking part of the checklist, and whether it is complete."""
    if not settings.oauth_provider:
        return ["Third-party account linking: not configured (SMARTAPP_OAUTH_PROVIDER is unset)."], True
    callback = smartapp_callback(settings.api_url)
    lines = [f"Third-party account linking ({settings.oauth_provider}):",
             f"  Redirect URI to register at the provider:  {callback}",
             "    (c2c-us/eu/ap.smartthings.com callbacks belong to SmartThings Schema connectors, not SmartApps)"]
    complete = True
    warning = redirect_uri_warning(settings.oauth_redirect_uri, settings.api_url)
    if warning:
        lines.append(f"  WARNING: SMARTAPP_OAUTH_REDIRECT_URI: {warning}")
        complete = False
    try:
        template, pkce = url_template(settings)
        lines.append(f"  OAUTH setting urlTemplate:  {template}")
        lines.append(f"    (the configuration page puts each installation's id in state"
                     f"{' and adds a PKCE S256 challenge' if pkce else ''})")
    except IncompleteOAuth as error:
        lines.append(f"  MISSING: {error}")
        complete = False
    return lines, complete


def checklist(settings: Settings, body: dict) -> list[str]:
    webhook = body["webhookSmartApp"]
    lines = [
        "Register a webhook SmartApp: Developer Workspace -> Automations -> Create (hosting: WebHook endpoint),",
        "or `smartthings apps:create -i FILE` with the file `smartapp register --write FILE` writes.",
        "(The CLI's interactive apps:create only makes API-access apps, not this kind.)",
        "",
        f"  App type        {body['appType']} (classification {body['classifications'][0]})",
        f"  Target URL      {webhook['targetUrl']}",
        f"  App name        {body['appName']}  (unique across SmartThings)",
        f"  Display name    {body['displayName']}",
        f"  Scopes          {' '.join(body['oauth']['scope'])}",
        "",
    ]
    signed_path = strip_query(urlsplit(webhook["targetUrl"]).path or "/")
    if signed_path != settings.public_path:
        lines += [f"WARNING: SmartThings signs the path {signed_path!r} but SMARTAPP_PUBLIC_PATH is "
                  f"{settings.public_path!r}: every request would be refused (401). "
                  f"Set SMARTAPP_PUBLIC_PATH={signed_path}", ""]
    return lines + [
        "After saving:",
        "  1. The OAuth client id and secret are shown once: put them in SMARTAPP_CLIENT_ID and",
        "     SMARTAPP_CLIENT_SECRET now (they refresh the installations' SmartThings tokens).",
        "  2. Set SMARTAPP_APP_ID to the new appId and restart: the service then confirms the target by itself.",
        "     Otherwise open the confirmation URL the log shows once (resend: smartthings apps:register APP_ID).",
        "  3. Run `smartapp doctor`, then install from the SmartThings app (Developer Mode on).",
        "",
    ]


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(provider_checks=False)
        target_url = check_target_url(args.target_url or settings.public_url)
        app = load_app(settings.app)
    except CommandError as error:
        return fail(str(error))
    except ConfigError as error:
        return fail("; ".join(error.problems))
    body = manifest(target_url=target_url, app_name=args.app_name or default_app_name(target_url),
                    display_name=args.display_name or app.name, description=args.description or app.description,
                    scope=scopes(app))
    link_lines, complete = oauth_lines(settings)
    if args.write:
        path = Path(args.write)
        if path.exists() and not args.force:
            return fail(f"{path} exists; pass --force to overwrite it")
        path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print("\n".join(checklist(settings, body) + link_lines))
    if args.write:
        print(f"\nwrote {args.write}; create the app with: smartthings apps:create -i {args.write}",
              file=sys.stderr if args.json else sys.stdout)
    return 0 if complete else 1
