"""Doctor checks that need no I/O: completeness, the public URL, the signed path, proxies and dev mode."""

from __future__ import annotations

import ipaddress
from typing import Mapping
from urllib.parse import urlsplit

from smartapp.checks import FAIL, OK, WARN, Finding
from smartapp.oauth.registration import IncompleteOAuth, redirect_uri_warning, url_template
from smartapp.settings import Settings
from smartapp.signature import strip_query
from smartapp.wiring import problems

HEROKU_ROUTER_TIMEOUT = 30


def config_findings(settings: Settings, environ: Mapping[str, str]) -> list[Finding]:
    found = [Finding(FAIL, "config", problem) for problem in problems(settings)]
    if not found:
        found.append(Finding(OK, "config", f"configuration is valid (store: {settings.store_kind})"))
    found += completeness(settings)
    found += oauth(settings)
    found += public_url(settings, environ)
    found += proxies(environ)
    if settings.dev_mode:
        found.append(Finding(WARN, "dev mode", "SMARTAPP_DEV_MODE=1: the local development key is trusted",
                             "fine on a laptop with smartapp simulate; never deploy with it"))
    return found


def completeness(settings: Settings) -> list[Finding]:
    found = []
    if not settings.app_id:
        found.append(Finding(WARN, "app id", "SMARTAPP_APP_ID is not set",
                             "set it to the appId SmartThings gave the app: CONFIRMATION is then answered by the "
                             "service itself, and INITIALIZE names the app (extra permissions need that)"))
    if not (settings.client_id and settings.client_secret):
        found.append(Finding(WARN, "client", "SMARTAPP_CLIENT_ID / SMARTAPP_CLIENT_SECRET are not both set: "
                             "stored SmartThings tokens cannot be refreshed, so out-of-band calls stop 24 h "
                             "after INSTALL/UPDATE",
                             "copy the OAuth client id and secret shown when the app was created; if lost, "
                             "`smartthings apps:oauth:generate APP_ID` issues new ones"))
    return found


def oauth(settings: Settings) -> list[Finding]:
    """Missing values are config findings already (wiring.problems); here: would the link come back?"""
    if not settings.oauth_provider:
        return [Finding(OK, "oauth", "no third-party account linking configured (SMARTAPP_OAUTH_PROVIDER unset)")]
    found = []
    try:
        url_template(settings)
    except IncompleteOAuth as error:
        found.append(Finding(FAIL, "oauth", str(error), "see `smartapp register` for the values to use"))
    warning = redirect_uri_warning(settings.oauth_redirect_uri, settings.api_url)
    if warning:
        found.append(Finding(FAIL, "oauth", warning, "a 401 at api.smartthings.com/oauth/callback is the symptom"))
    if not found:
        found.append(Finding(OK, "oauth", f"{settings.oauth_provider} account linking is configured"))
    return found


def public_url(settings: Settings, environ: Mapping[str, str]) -> list[Finding]:
    url = settings.public_url
    if not url:
        if settings.dev_mode:
            return [Finding(OK, "public url", "not set; not needed for smartapp simulate in development mode")]
        forwarded = environ.get("FORWARDED_ALLOW_IPS") or ("*" if environ.get("DYNO") else "127.0.0.1")
        return [Finding(WARN, "public url", "SMARTAPP_PUBLIC_URL is not set: the CONFIRMATION answer is derived "
                        "from each request's Host and X-Forwarded-Proto (trusted only from "
                        f"FORWARDED_ALLOW_IPS={forwarded})",
                        "set SMARTAPP_PUBLIC_URL to the https target URL registered with SmartThings")]
    parts = urlsplit(url)
    host = parts.hostname or ""
    found = []
    if parts.scheme != "https" and not settings.dev_mode:
        found.append(Finding(FAIL, "public url", f"{url} is not https: SmartThings only calls https targets",
                             "put the service behind TLS (Heroku, a reverse proxy, or a tunnel such as ngrok)"))
    elif (host == "localhost" or is_ip_address(host)) and not settings.dev_mode:
        found.append(Finding(FAIL, "public url", f"{url} has no public host name: SmartThings answers "
                             "TargetTimeoutError for bare IPs and localhost",
                             "use a DNS name with a valid certificate"))
    signed_path = strip_query(parts.path or "/")
    if signed_path != settings.public_path:
        found.append(Finding(FAIL, "signed path", f"SmartThings signs {signed_path!r} (the target URL's path) but "
                             f"SMARTAPP_PUBLIC_PATH is {settings.public_path!r}: every signed request answers 401",
                             f"set SMARTAPP_PUBLIC_PATH={signed_path}"))
    if not found:
        found.append(Finding(OK, "public url", f"{url}; signatures are checked against path {signed_path!r}"))
    return found


def proxies(environ: Mapping[str, str]) -> list[Finding]:
    found = []
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        if environ.get(name):
            proxy = urlsplit(environ[name])
            where = f"{proxy.hostname}:{proxy.port}" if proxy.port else str(proxy.hostname)  # never the password
            no_proxy = environ.get("NO_PROXY") or environ.get("no_proxy") or "-"
            found.append(Finding(OK, "proxy", f"outbound calls (key server, SmartThings API, providers) go through "
                                 f"{where} ({name}); NO_PROXY={no_proxy}"))
            break
    timeout = environ.get("GUNICORN_TIMEOUT", "")
    if timeout.isdigit() and int(timeout) >= HEROKU_ROUTER_TIMEOUT:
        found.append(Finding(WARN, "timeouts", f"GUNICORN_TIMEOUT={timeout}: Heroku's router gives up at 30 s (H12) "
                             "and SmartThings at 10 s", "leave GUNICORN_TIMEOUT unset (20 s)"))
    return found


def is_ip_address(host: str) -> bool:
    """A bare IP address: SmartThings calls only a host name with a certificate (also `register`'s check)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
