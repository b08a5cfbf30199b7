"""The `vsm` command: one group per area (DESIGN §3.1). Data to stdout, logs to stderr."""

from __future__ import annotations

import click

from .commands.dashboard import dashboard_cmd
from .commands.genome import genome_group
from .commands import ledger_plot, ledger_tree, ledger_views  # noqa: F401  (they add commands to the ledger group)
from .commands.ledger import ledger_group
from .commands.live import LIVE_COMMANDS
from .commands.run import run_cmd
from .commands.signal import SIGNAL_COMMANDS
from .commands.simulate import simulate_cmd
from .commands.trials import TRIAL_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vsm_actors")
def main() -> None:
    """vsm_actors: run and evolve recursive Viable System Model coding organizations."""


main.add_command(dashboard_cmd)
main.add_command(genome_group)
main.add_command(ledger_group)
main.add_command(run_cmd)
main.add_command(simulate_cmd)
for _command in (*LIVE_COMMANDS, *TRIAL_COMMANDS, *SIGNAL_COMMANDS):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
