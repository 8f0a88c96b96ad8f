"""CLI subcommands, one module each (see geodiff.cli.LAZY_COMMANDS)."""
