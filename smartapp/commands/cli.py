"""The `smartapp` console script: the argument parser, wired to one module per subcommand."""

from __future__ import annotations

import argparse
import sys

from smartapp.commands import api_call, check_config, doctor, installations, refresh_due, register, simulate

EPILOG = "Every command reads the environment and a .env file in the working directory, like the service."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smartapp", description="SmartThings webhook SmartApp service tools",
                                     epilog=EPILOG)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check-config", help="validate the configuration (the Procfile release check)",
                                description="Exit 1 when the configuration cannot serve; the Procfile release: "
                                            "line runs this so a bad deploy fails before it gets traffic.")
    check.set_defaults(run=check_config.run)

    reg = commands.add_parser("register", help="print what to paste into the Developer Workspace",
                              description="Print the target URL, scopes, provider redirect URI and OAUTH "
                                          "urlTemplate for a WEBHOOK_SMART_APP; optionally write the file for "
                                          "`smartthings apps:create -i FILE`. Exit 1 if something is missing.")
    reg.add_argument("--target-url", help="the public https URL SmartThings calls (default: SMARTAPP_PUBLIC_URL)")
    reg.add_argument("--app-name", help="unique appName (default: derived from the target host)")
    reg.add_argument("--display-name", help="name shown in the SmartThings app (default: the app's name)")
    reg.add_argument("--description", help="up to 250 characters (default: the app's description)")
    reg.add_argument("--write", metavar="FILE", help="write the apps:create body (JSON, also valid YAML) to FILE")
    reg.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    reg.add_argument("--json", action="store_true", help="print only the apps:create body")
    reg.set_defaults(run=register.run)

    sim = commands.add_parser("simulate", help="send signed lifecycles to a running development instance",
                              description="Drive PING, CONFIRMATION, CONFIGURATION, OAUTH_CALLBACK, INSTALL, UPDATE, "
                                          "EVENT and UNINSTALL for one made-up installation of the configured app "
                                          "(SMARTAPP_APP; its pages give the settings), signed with the local "
                                          "development key (the instance must run with SMARTAPP_DEV_MODE=1). "
                                          "Exit 1 if any answer is a real failure.")
    sim.add_argument("--url", help="the instance's webhook URL (default: http://127.0.0.1:$PORT/ + public path)")
    sim.add_argument("--key", help="the development key file (default: beside SMARTAPP_DB_PATH)")
    sim.add_argument("--only", metavar="NAMES", help="comma-separated lifecycles to send, e.g. INSTALL,EVENT")
    sim.add_argument("--installed-app-id", help="reuse this installedAppId (default: a new one)")
    sim.add_argument("--timeout", type=float, default=12.0, help="seconds to wait for each answer (default 12)")
    sim.add_argument("--device-event", action="append", metavar="SETTING=VALUE",
                     help="the EVENT reports VALUE from a device of that setting, e.g. sensors=open (repeatable)")
    sim.add_argument("--timer", action="append", metavar="NAME",
                     help="the EVENT carries a TIMER_EVENT of the schedule NAME (repeatable)")
    sim.set_defaults(run=simulate.run)

    doc = commands.add_parser("doctor", help="check configuration, store, clock, key server and public URL",
                              description="Check the deployment and print each finding with a fix. Exit 1 on any "
                                          "failed check (with --strict also on warnings).")
    doc.add_argument("--offline", action="store_true", help="skip the network checks (key server, clock, public URL)")
    doc.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    doc.set_defaults(run=doctor.run)

    inst = commands.add_parser("installations", help="list, show or purge stored installations",
                               description="Inspect the store. Tokens are never printed: only whether each is "
                                           "present and when it expires.")
    actions = inst.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="one line per installation")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = actions.add_parser("show", help="one installation's record, without secrets")
    show.add_argument("installed_app_id", metavar="INSTALLED_APP_ID")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    purge = actions.add_parser("purge", help="delete everything stored for one installation")
    purge.add_argument("installed_app_id", metavar="INSTALLED_APP_ID")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    inst.set_defaults(run=installations.run)

    refresh_due.add_parser(commands)
    api_call.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
