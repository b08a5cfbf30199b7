"""Subcommands of the `vsm` command line, one module per command group."""
