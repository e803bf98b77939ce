"""`smartapp installations list|show|purge`: what the store holds per installation, never a token's value."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from smartapp.commands.environment import CommandError, fail, load_settings
from smartapp.errors import SmartAppError
from smartapp.lifecycle import validate_installed_app_id
from smartapp.settings import ConfigError
from smartapp.store import SECRET_FIELDS, CorruptRecord, Installation, Store
from smartapp.wiring import open_existing_store

# Each secret and the time that tells whether it is still good; the time fields are shown with it.
TOKEN_TIMES = {
    "auth_token": ("expires", "auth_token_expires_at"),
    "refresh_token": ("issued", "refresh_token_issued_at"),
    "provider_access_token": ("expires", "provider_token_expires_at"),
    "provider_refresh_token": ("issued", "provider_refresh_token_issued_at"),
}


def is_secret(name: str) -> bool:
    """A field whose value is never shown; the name test also covers fields added after this was written."""
    if name in SECRET_FIELDS:
        return True
    return ("token" in name or "secret" in name or "verifier" in name) and not name.endswith(("_at", "_scope"))


def when(epoch: float | None) -> str | None:
    return None if epoch is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def describe(installation: Installation) -> dict:
    """Every field, with each secret reduced to whether it is present and its expiry or issue time."""
    shown: dict[str, object] = {}
    tokens: dict[str, dict] = {}
    time_fields = {field for _, field in TOKEN_TIMES.values()}
    for item in dataclasses.fields(installation):
        value = getattr(installation, item.name)
        if item.name == "app_state":
            shown["app_state_bytes"] = len(value or "")  # the app's own data: how much, never what
        elif is_secret(item.name):
            entry: dict[str, object] = {"present": bool(value)}
            if item.name in TOKEN_TIMES:
                kind, field = TOKEN_TIMES[item.name]
                entry[kind] = when(getattr(installation, field, None))
            tokens[item.name] = entry
        elif item.name in time_fields:
            continue
        elif item.name == "config":
            # Setting ids and how many values each has; the values can be personal (device ids, text).
            shown["config"] = {key: len(v) if isinstance(v, list) else 1 for key, v in (value or {}).items()}
        elif item.name.endswith("_at"):
            shown[item.name] = when(value)
        else:
            shown[item.name] = value
    shown["tokens"] = tokens
    return shown


def summary_line(installation: Installation) -> str:
    access = "present" if installation.auth_token else "absent"
    expires = when(installation.auth_token_expires_at)
    if expires and installation.auth_token:
        access += f", expires {expires}"
    provider = installation.provider or "none"
    if installation.provider:
        provider += " (linked)" if installation.provider_access_token else " (not linked)"
    flag = f"  REAUTH REQUIRED: {installation.reauth_required}" if installation.reauth_required else ""
    return (f"{installation.installed_app_id}  location {installation.location_id or '-'}  "
            f"updated {when(installation.updated_at) or '-'}  access token {access}  provider {provider}{flag}")


def list_installations(store: Store, args: argparse.Namespace) -> int:
    rows, unreadable = [], []
    for installed_app_id in store.installed_app_ids():
        try:
            installation = store.get(installed_app_id)
        except CorruptRecord:
            unreadable.append(installed_app_id)
            continue
        if installation is not None:
            rows.append(installation)
    if args.json:
        print(json.dumps({"installations": [describe(row) for row in rows], "unreadable": unreadable}, indent=2))
    else:
        for row in rows:
            print(summary_line(row))
        for installed_app_id in unreadable:
            print(f"{installed_app_id}  UNREADABLE: the configured token keys cannot decrypt it")
        print(f"{len(rows)} installation(s) in {store.describe()}")
    return 1 if unreadable else 0


def show_installation(store: Store, args: argparse.Namespace) -> int:
    installation = store.get(args.installed_app_id)
    if installation is None:
        return fail(f"no installation {args.installed_app_id} in {store.describe()}")
    shown = describe(installation)
    if args.json:
        print(json.dumps(shown, indent=2))
        return 0
    tokens = shown.pop("tokens")
    for name, value in shown.items():
        text = json.dumps(value) if isinstance(value, (dict, list)) else "-" if value is None else value
        print(f"{name:<34} {text}")
    for name, entry in tokens.items():
        times = ", ".join(f"{k} {v}" for k, v in entry.items() if k != "present" and v)
        print(f"{name:<34} {'present' if entry['present'] else 'absent'}{', ' + times if times else ''}")
    return 0


def purge_installation(store: Store, args: argparse.Namespace) -> int:
    if store.get(args.installed_app_id) is None:
        return fail(f"no installation {args.installed_app_id} in {store.describe()}")
    if not args.yes:
        if not sys.stdin.isatty():
            return fail("purge deletes the installation's tokens for good: pass --yes to confirm")
        answer = input(f"delete everything stored for {args.installed_app_id}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return fail("not purged")
    store.delete(args.installed_app_id)
    print(f"purged {args.installed_app_id}. SmartThings still lists the installation until the user removes it; "
          "until then its requests arrive for an installation this service has forgotten.")
    return 0


ACTIONS = {"list": list_installations, "show": show_installation, "purge": purge_installation}


def run(args: argparse.Namespace) -> int:
    try:
        if getattr(args, "installed_app_id", None) is not None:
            args.installed_app_id = validate_installed_app_id(args.installed_app_id)
    except SmartAppError:
        return fail(f"{args.installed_app_id!r} is not an installedAppId (a UUID)")
    try:
        store = open_existing_store(load_settings())
    except (CommandError, ConfigError) as error:
        return fail(str(error))
    try:
        return ACTIONS[args.action](store, args)
    except CorruptRecord:
        return fail("the configured token keys cannot decrypt this installation "
                    "(SMARTAPP_TOKEN_KEYS or the .keys file)")
    except SmartAppError as error:
        return fail(f"the store did not answer ({error.reason}{': ' + error.detail if error.detail else ''})")
    finally:
        store.close()
