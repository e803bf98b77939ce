"""Doctor checks over the network: the key server, this host's clock against it, and the public URL."""

from __future__ import annotations

import json
import time
import uuid
from email.utils import parsedate_to_datetime

import requests

from smartapp.checks import FAIL, OK, WARN, Finding
from smartapp.settings import Settings

# Signatures are accepted within ±300 s (signature.Verifier); warn well before a drifting clock gets there.
SKEW_FAIL_SECONDS = 300
SKEW_WARN_SECONDS = 30
TIMEOUT = (3.0, 10.0)  # SmartThings itself waits 10 s for an answer


def network_findings(settings: Settings, session: requests.Session, *, clock=time.time) -> list[Finding]:
    return key_server(settings, session, clock) + public_url(settings, session)


def key_server(settings: Settings, session: requests.Session, clock) -> list[Finding]:
    started = time.monotonic()
    try:
        # Any HTTP answer proves reachability; keys live at paths only SmartThings' requests name.
        response = session.get(settings.key_server + "/", timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as error:
        level = WARN if settings.dev_mode else FAIL
        return [Finding(level, "key server", f"cannot reach {settings.key_server} ({type(error).__name__}): every "
                        "request signed by SmartThings would answer 503 key_server_unavailable",
                        "allow outbound HTTPS to the key server; behind a proxy set HTTPS_PROXY"),
                clock_sanity(clock)]
    elapsed = (time.monotonic() - started) * 1000
    found = [Finding(OK, "key server", f"{settings.key_server} answered (HTTP {response.status_code}) "
                     f"in {elapsed:.0f} ms")]
    date = response.headers.get("Date")
    try:
        server_time = parsedate_to_datetime(date).timestamp() if date else None
    except (TypeError, ValueError):
        server_time = None
    if server_time is None:
        return found + [clock_sanity(clock)]
    skew = clock() - server_time
    if abs(skew) > SKEW_FAIL_SECONDS:
        found.append(Finding(FAIL, "clock", f"this host's clock is {skew:+.0f} s off the key server's: every "
                             "signature is refused (reason date_out_of_window)", "run NTP (chrony/systemd-timesyncd)"))
    elif abs(skew) > SKEW_WARN_SECONDS:
        found.append(Finding(WARN, "clock", f"this host's clock is {skew:+.0f} s off the key server's (limit 300 s)",
                             "run NTP (chrony/systemd-timesyncd)"))
    else:
        found.append(Finding(OK, "clock", f"within {abs(skew):.0f} s of the key server (HTTP Date has 1 s resolution)"))
    return found


def clock_sanity(clock) -> Finding:
    """Without a remote Date to compare with, at least refuse a clock that is plainly unset."""
    year = time.gmtime(clock()).tm_year
    if year < 2024:
        return Finding(FAIL, "clock", f"this host believes it is {year}: every signature would be refused",
                       "set the clock and run NTP")
    return Finding(WARN, "clock", "not compared with a remote clock (key server unreachable)", "run NTP")


def public_url(settings: Settings, session: requests.Session) -> list[Finding]:
    """POST an unsigned PING to the target URL, as SmartThings does when the app is saved."""
    if not settings.public_url:
        return []
    challenge = str(uuid.uuid4())
    body = {"lifecycle": "PING", "executionId": str(uuid.uuid4()), "pingData": {"challenge": challenge}}
    try:
        response = session.post(settings.public_url, data=json.dumps(body), timeout=TIMEOUT, allow_redirects=False,
                                headers={"Content-Type": "application/json"})
    except requests.RequestException as error:
        return [Finding(FAIL, "reachability", f"{settings.public_url} did not answer a PING ({type(error).__name__}): "
                        "SmartThings reports TargetTimeoutError / TargetUnreachableError",
                        "is the service (and the tunnel) running, and does DNS point here?")]
    try:
        echoed = response.json().get("pingData", {}).get("challenge")
    except (ValueError, AttributeError):
        echoed = None
    if response.status_code == 200 and echoed == challenge:
        return [Finding(OK, "reachability", f"{settings.public_url} answers PING like SmartThings expects")]
    return [Finding(FAIL, "reachability", f"{settings.public_url} answered a PING with HTTP {response.status_code} "
                    "and no echo: something other than this service answers there",
                    "check the tunnel/proxy target and SMARTAPP_PUBLIC_PATH")]
