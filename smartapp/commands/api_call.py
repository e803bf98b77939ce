"""`smartapp api`: one SmartThings API call on behalf of a stored installation (a proactive call)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from smartapp.api import ApiError
from smartapp.commands.environment import CommandError, fail, load_settings
from smartapp.errors import ReauthRequired, SmartAppError, StoreUnavailable, UnknownInstallation
from smartapp.proactive import installation

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
USAGE_ERROR = 2


def add_parser(commands: argparse._SubParsersAction) -> None:
    api = commands.add_parser(
        "api", help="one SmartThings API call for a stored installation",
        description="Call the SmartThings API with an installation's stored token (refreshed first when due, and "
                    "once more after a 401) and print the JSON answer. Exit 0 on 2xx, 1 on any other answer or "
                    "failure, 2 on usage errors. The token is never printed.")
    api.add_argument("installed_app_id", metavar="INSTALLED_APP_ID")
    api.add_argument("method", metavar="METHOD", type=str.upper, choices=METHODS, help=", ".join(METHODS))
    api.add_argument("path", metavar="PATH", help="relative to SMARTAPP_API_URL, e.g. /devices/<deviceId>/status")
    api.add_argument("--data", metavar="JSON", help="the request body, as JSON")
    api.set_defaults(run=run)


def _usage(message: str) -> int:
    print(f"smartapp api: {message}", file=sys.stderr)
    return USAGE_ERROR


def run(args: argparse.Namespace) -> int:
    if not args.path.startswith("/") or args.path.startswith("//"):
        return _usage(f"PATH must be a path relative to SMARTAPP_API_URL such as /devices/<deviceId>/status, "
                      f"not {args.path[:80]!r}: an absolute URL is refused so the token only goes to SmartThings")
    try:
        data = json.loads(args.data) if args.data is not None else None
    except ValueError:
        return _usage("--data is not valid JSON")
    # The outcome is this command's one line. Where nothing configured logging, Python's last-resort handler
    # would also print the library's warnings (bare reason codes such as store_unreachable_at_start).
    logging.getLogger("smartapp").addHandler(logging.NullHandler())
    try:
        load_settings()
        with installation(args.installed_app_id) as context:
            answer = context.api.request(args.method, args.path, json=data)
    except CommandError as error:
        return fail(str(error))
    except UnknownInstallation:
        return fail(f"no installation {args.installed_app_id} in the store (`smartapp installations list`)")
    except ReauthRequired:
        return fail(f"installation {args.installed_app_id} needs re-authorisation: its refresh token was rejected; "
                    "the user must open the SmartApp's settings in the SmartThings app and save them (UPDATE)")
    except StoreUnavailable as error:
        return fail(f"the store is unavailable ({error.detail or error.reason}): run `smartapp doctor`")
    except ApiError as error:
        return fail(f"SmartThings answered {error.http_status or 'nothing'} ({error.reason})"
                    + (f": {error.code}" if getattr(error, "code", None) else ""))
    except SmartAppError as error:
        return fail(f"the call failed ({error.reason}{': ' + error.detail if error.detail else ''})")
    print(json.dumps(answer, indent=2))
    return 0
