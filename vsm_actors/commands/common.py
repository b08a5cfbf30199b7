"""Shared plumbing for subcommands: output formats, exit codes, error reporting."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

output_option = click.option(
    "-o", "--output", "output", type=click.Choice(["text", "json", "jsonl"]), default="text", show_default=True,
    help="Output format for data written to stdout.")


class BadInput(click.ClickException):
    """Bad input (unreadable file, invalid genome, bad usage): message on stderr, exit code 2."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file=None) -> None:
        click.echo(self.format_message(), err=True)


def emit_json(data: Any, *, lines: bool = False) -> None:
    if lines and isinstance(data, list):
        for item in data:
            sys.stdout.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
