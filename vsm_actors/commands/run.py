"""`vsm run`: boot an organization, run directives, print results, shut down."""

from __future__ import annotations

import os
import signal
import sys

import click

from ..actors.protocol import ProviderSpec, RuntimeConfig
from ..ledger import describe_ledger
from ..system import GenomeChanged, Organization, OrganizationError, OrganizationTimeout, check_storable
from .common import SECONDS, BadInput, build_directives, directive_options, option_metadata, output_option
from .results import ResultStream, not_yet_finished
from .genome import read_genome
from .provider_config import configure_providers, provider_options, provider_settings

DEFAULT_LEDGER = "vsm-ledger.sqlite"


def ledger_option(fn):
    return click.option("--ledger", "ledger", default=lambda: os.environ.get("VSM_LEDGER", DEFAULT_LEDGER),
                        show_default="$VSM_LEDGER or ./vsm-ledger.sqlite",
                        help="Ledger path (SQLite) or URL (postgresql://..., memory://).")(fn)


def build_provider(provider: str, script: str | None, options: tuple[str, ...]) -> ProviderSpec:
    """The default provider the flags give (provider_config.provider_settings has them all)."""
    return provider_settings(provider, script, options)["provider"]


def boot_mode(fresh: bool, resume: bool) -> str:
    """What to do when the genome file is not the version the ledger's champion grew from."""
    if fresh and resume:
        raise BadInput("--fresh and --resume contradict each other; choose one")
    return "fresh" if fresh else "resume" if resume else "stop"


def install_signal_shutdown() -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C so `finally` shuts the actor system down."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


@click.command("run")
@click.argument("genome_file", type=click.Path(dir_okay=False))
@click.option("--directive", "directives", multiple=True, help="Directive text, repeatable.")
@click.option("--directives", "directives_file", type=click.Path(dir_okay=False),
              help="File of directives: one per line (blank lines and # comments skipped), JSON lines, or "
                   "YAML/JSON (.yaml, .yml, .json) entries with title, body and metadata.")
@directive_options
@ledger_option
@provider_options
@click.option("--base", type=click.Choice(["simple", "multiproc"]), default="simple", show_default=True,
              help="simple: in-process actors; multiproc: one process per actor on 127.0.0.1.")
@click.option("--fresh", is_flag=True, help="Start GENOME_FILE as it is, ignoring the ledger's champion (a file that "
              "changed starts a new lineage).")
@click.option("--resume", is_flag=True, help="Continue: keep the ledger's evolved champion even if GENOME_FILE "
              "changed since, and skip the directives an earlier run of the same input finished.")
@click.option("--timeout", type=SECONDS, default=600.0, show_default=True,
              help="Seconds to wait for all results; what finished is printed either way.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr (by default a live bar on a terminal, "
              "else a line every 5 s and at the end).")
@output_option
def run_cmd(genome_file, directives, directives_file, meta, task_class, risk, capability, ledger, provider, script,
            provider_options, workspace, agent_argv, base, fresh, resume, timeout, quiet, output) -> None:
    """Boot the organization in GENOME_FILE, run directives, print results, shut down.

    Exit 0 when every directive completed, 1 when any failed, 2 on bad input."""
    items = build_directives(directives, directives_file, option_metadata(meta, task_class, risk, capability))
    genome = read_genome(genome_file)
    config = RuntimeConfig(ledger_url=ledger, **configure_providers(genome, provider, script, provider_options,
                                                                    agent_argv, workspace))
    for n, item in enumerate(items, 1):  # before anything starts: bad input is refused whole
        try:
            check_storable(item, config)
        except ValueError as exc:
            raise BadInput(f"directive {n}: {exc}") from None
    install_signal_shutdown()
    try:
        with Organization.start(genome, config, base=base, restore=not fresh, timeout=60,
                                if_changed=boot_mode(fresh, resume)) as org:
            if org.booted.restored:
                click.echo(f"restored champion genome {org.booted.genome_id} from {describe_ledger(ledger)}", err=True)
            if resume:  # continue where an earlier run of the same input stopped
                left = not_yet_finished(org, items)
                if len(left) < len(items):
                    click.echo(f"resuming: {len(items) - len(left):,} of {len(items):,} directives finished "
                               "in an earlier run", err=True)
                items = left
            stream = ResultStream(items, output, quiet=quiet, label="run")
            try:
                dones = org.run_many(items, timeout, on_done=stream)
            except (KeyboardInterrupt, OrganizationTimeout) as exc:
                sys.exit(stream.stopped(org, "interrupted" if isinstance(exc, KeyboardInterrupt) else "timed out"))
    except GenomeChanged as exc:
        raise BadInput(str(exc)) from None
    except OrganizationError as exc:
        click.echo(f"vsm run: {exc}", err=True)
        sys.exit(1)
    stream.finish(dones)
    sys.exit(0 if all(d.ok for d in dones) else 1)
