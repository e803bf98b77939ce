"""The same subcommands under `flask --app smartapp ...`, registered as Flask CLI plugin commands in setup.cfg."""

from __future__ import annotations

import click

from smartapp.commands import cli


def _passthrough(name: str) -> click.Command:
    # The arguments go to commands/cli.py untouched: both entry points share one parser, help and exit codes.
    @click.command(name, add_help_option=False, help=f"smartapp {name} (see --help)",
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    @click.pass_context
    def command(ctx: click.Context) -> None:
        # A plugin command runs without loading the app, so a broken configuration can still be checked.
        ctx.exit(cli.main([name, *ctx.args]))

    return command


check_config = _passthrough("check-config")
register = _passthrough("register")
simulate = _passthrough("simulate")
doctor = _passthrough("doctor")
installations = _passthrough("installations")
refresh_due = _passthrough("refresh-due")
api = _passthrough("api")
