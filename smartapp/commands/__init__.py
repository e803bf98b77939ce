"""The `smartapp` command: one module per subcommand, the parser that wires them in (cli.py), the Flask plugin."""
