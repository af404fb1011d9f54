"""One module per command group; each exposes a click command named in `daemon.cli.COMMANDS`."""
