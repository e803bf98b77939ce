"""One module per `smartapp` subcommand; smartapp/cli.py builds the parser and wires them in."""
