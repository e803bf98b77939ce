"""`smartapp simulate`: send signed lifecycles to a running development instance and print each answer."""

from __future__ import annotations

import argparse
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from smartapp import simulation
from smartapp.app_loader import load_app
from smartapp.application import SmartApp
from smartapp.commands.environment import CommandError, fail, load_settings
from smartapp.devkey import dev_key_id, dev_key_path, load_dev_key
from smartapp.errors import SmartAppError
from smartapp.lifecycle import validate_installed_app_id
from smartapp.settings import ConfigError, read_dotenv
from smartapp.signature import strip_query
from smartapp.signer import signed_headers

# Each step's answer must carry this key (CONFIRMATION answers a bare object with targetUrl).
EXPECTED_KEYS = {"PING": "pingData", "CONFIRMATION": "targetUrl", "CONFIGURATION/INITIALIZE": "configurationData",
                 "CONFIGURATION/PAGE": "configurationData", "OAUTH_CALLBACK": "oAuthCallbackData",
                 "INSTALL": "installData", "UPDATE": "updateData", "EVENT": "eventData",
                 "UNINSTALL": "uninstallData"}


@dataclass(frozen=True)
class Verdict:
    label: str  # "ok", "skip" or "FAIL"
    note: str | None = None


def judge(step: str, status: int, answer: object, *, key_path: Path) -> Verdict:
    """Whether an answer is what a healthy development instance gives; only real failures are FAIL."""
    if status == 200:
        if isinstance(answer, dict) and EXPECTED_KEYS[step] in answer:
            return Verdict("ok")
        return Verdict("FAIL", f"200 without {EXPECTED_KEYS[step]!r}: not the answer SmartThings expects")
    reason = answer.get("error") if isinstance(answer, dict) else None
    if step == "OAUTH_CALLBACK" and status == 400 and reason == "oauth_not_configured":
        return Verdict("skip", "no third-party provider is configured (SMARTAPP_OAUTH_PROVIDER unset): "
                               "nothing to link, as expected")
    if step == "OAUTH_CALLBACK" and status == 400 and reason == "oauth_exchange_failed":
        # The link was pending and consumed; only the code is made up, and a real provider refuses it.
        return Verdict("skip", "the provider refused the simulated code, as expected: a real code only comes "
                               "from the provider's login page in the SmartThings app")
    if status == 401:
        return Verdict("FAIL", f"the instance refused the development key: start it with SMARTAPP_DEV_MODE=1 and "
                               f"the same SMARTAPP_DB_PATH (key file {key_path}); its log line says why")
    if status == 503:
        return Verdict("FAIL", f"the instance could not finish ({reason}): its store or a remote service is "
                               "unavailable; run `smartapp doctor`")
    return Verdict("FAIL", f"unexpected answer ({reason}); the instance's log line for this request says why")


def default_url(public_path: str) -> str:
    port = os.environ.get("PORT") or read_dotenv(".env").get("PORT") or "8000"
    return f"http://127.0.0.1:{port}{public_path}"


def _shown(answer: object, text: str) -> str:
    shown = json.dumps(answer) if answer is not None else text.strip()
    return shown if len(shown) <= 200 else shown[:200] + "..."


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        steps = select_steps(args.only)
        installed_app_id = _installed_app_id(args.installed_app_id)
        wanted_devices = [_device_event(text) for text in args.device_event or []]
        app = load_app(settings.app)
    except CommandError as error:
        return fail(str(error))
    except ConfigError as error:
        return fail("; ".join(error.problems))
    key_path = Path(args.key) if args.key else dev_key_path(settings.db_path)
    try:
        private_key = load_dev_key(key_path)
    except FileNotFoundError:
        return fail(f"no development key at {key_path}: start the service with SMARTAPP_DEV_MODE=1 first (it creates "
                    "the key beside its SQLite file), from this directory or with the same SMARTAPP_DB_PATH")
    except ValueError as error:
        return fail(f"cannot read the development key: {error}")
    key_id = dev_key_id(private_key.public_key())
    url = args.url or default_url(settings.public_path)
    path = strip_query(urlsplit(url).path or "/")
    sim = simulation.made_up(app, installed_app_id=installed_app_id, app_id=settings.app_id or str(uuid.uuid4()))
    events, problems = _events(app, sim, wanted_devices, args.timer or [])
    session = requests.Session()
    host = urlsplit(url).hostname or ""
    session.trust_env = not (host == "localhost" or host.startswith("127.") or host == "::1")  # no proxy for loopback
    print(f"simulating installation {sim.installed_app_id} at {url}\nsigned with development key {key_id} ({key_path})")
    counts = {"ok": 0, "skip": 0, "FAIL": 0}
    for step in steps:
        if step == "EVENT" and (problems or not events):
            label = "FAIL" if problems else "skip"
            counts[label] += 1
            print(f"{label:<5} {step:<25} not sent")
            for note in problems or ["the app subscribed to nothing at INSTALL: there is no device event to send "
                                     "(use --timer NAME for a schedule)"]:
                print(f"      {note}")
            continue
        raw = json.dumps(simulation.body(step, sim, events=events)).encode()
        headers = {"Content-Type": "application/json", "X-ST-Correlation": f"simulate-{uuid.uuid4()}"}
        if step != "PING":  # PING is the one lifecycle SmartThings does not sign
            headers.update(signed_headers(body=raw, private_key=private_key, key_id=key_id, path=path))
        try:
            response = session.post(url, data=raw, headers=headers, timeout=args.timeout, allow_redirects=False)
        except requests.ConnectionError:
            return fail(f"cannot reach {url}: is the service running? Start it with SMARTAPP_DEV_MODE=1 (README: "
                        "Try the whole lifecycle locally), or pass --url")
        except requests.Timeout:
            print(f"FAIL  {step:<25} no answer within {args.timeout:g} s (SmartThings gives up after 10 s)")
            counts["FAIL"] += 1
            continue
        try:
            answer = response.json()
        except ValueError:
            answer = None
        verdict = judge(step, response.status_code, answer, key_path=key_path)
        counts[verdict.label] += 1
        print(f"{verdict.label:<5} {step:<25} {response.status_code}  {_shown(answer, response.text)}")
        if verdict.note:
            print(f"      {verdict.note}")
    print(f"{counts['ok']} ok, {counts['skip']} skipped, {counts['FAIL']} failed")
    return 1 if counts["FAIL"] else 0


def select_steps(only: str | None) -> tuple[str, ...]:
    """All steps, or those named in `--only` (CONFIGURATION means both phases), in lifecycle order."""
    if not only:
        return simulation.STEPS
    wanted = {name.strip().upper() for name in only.split(",") if name.strip()}
    unknown = wanted - set(simulation.STEPS) - {"CONFIGURATION"}
    if unknown:
        raise CommandError(f"unknown lifecycle(s) in --only: {', '.join(sorted(unknown))}; "
                           f"choose from {', '.join(simulation.STEPS)}")
    return tuple(step for step in simulation.STEPS if step in wanted or step.split("/")[0] in wanted)


def _device_event(text: str) -> simulation.DeviceEvent:
    setting_id, sep, value = text.partition("=")
    if not sep or not setting_id or not value:
        raise CommandError(f"--device-event takes SETTING=VALUE (e.g. sensors=open), got {text!r}")
    return simulation.DeviceEvent(setting_id, value)


def _events(app: SmartApp, sim: simulation.Installation, wanted: list[simulation.DeviceEvent],
            timers: list[str]) -> tuple[list[dict], list[str]]:
    """The EVENT's events, and why any asked for would not be handled by the app (each a failure)."""
    events, problems = [], []
    for device in wanted or ([] if timers else [None]):
        event = simulation.device_event(sim, device)
        if event is None:
            if device is not None:
                problems.append(f"the app subscribed to no device of setting {device.setting_id!r} at INSTALL")
            continue
        prefix = event["deviceEvent"]["subscriptionName"].split("_", 1)[0]
        if prefix not in app.subscription_handlers:
            problems.append(f"the app subscribed as {prefix!r} but has no @app.subscription({prefix!r}) handler")
        events.append(event)
    for name in timers:
        if name not in app.schedule_handlers:
            problems.append(f"the app has no @app.schedule({name!r}) handler")
        events.append(simulation.timer_event(name))
    return events, problems


def _installed_app_id(value: str | None) -> str:
    if value is None:
        return str(uuid.uuid4())
    try:
        return validate_installed_app_id(value)
    except SmartAppError:
        raise CommandError(f"--installed-app-id must be a UUID, got {value!r}") from None
