"""`vsm trials`, `vsm trial show|approve|promote|prune ID`, `vsm evolve`: live trials and
generations of a running organization (`vsm up`)."""

from __future__ import annotations

import json

import click

from .. import codec
from .common import BadInput, emit_json, output_option
from .live import attach, state_option

node_option = click.option("--node", "node", default=None, help="The evolving metasystem (default: the first one).")


def _ask(state_dir: str, action: str, node: str | None, **kw):
    org = attach(state_dir)
    reply = org.evolution(action, node, **kw)
    if not reply.ok:
        raise BadInput(reply.error or f"{action} failed")
    return reply


def _row(record) -> dict:
    s = record.suggestion
    return {"trial_id": record.trial_id, "status": record.status.storage_key, "mode": s.trial_mode.value,
            "exposure_basis_points": s.safety_limits.max_traffic_share_basis_points,
            "routed_tasks": record.routed_tasks, "traces": record.trace_count, "score": round(record.total_score, 3),
            "selection_score": record.metadata.get("selection_score"),
            "decision": record.decision.storage_key if record.decision else None,
            "reason": record.metadata.get("decision_reason") or record.metadata.get("rejection_reason") or "",
            "hypothesis": s.hypothesis}


@click.command("trials")
@node_option
@state_option
@output_option
def trials_cmd(node, state_dir, output) -> None:
    """Every trial of a running organization's evolving metasystem: mode, exposure, traces, score, decision."""
    reply = _ask(state_dir, "status", node)
    rows = [_row(r) for r in reply.records]
    if output != "text":
        return emit_json(rows, lines=output == "jsonl")
    click.echo(f"{reply.controller_id}: generation {reply.generation}, active {reply.active.trial_id if reply.active else 'none'}")
    for r in rows:
        click.echo(f"{r['trial_id']}  {r['status']:<9} {r['mode']:<9} routed {r['routed_tasks']:>3} traces {r['traces']:>3} "
                   f"score {r['score']:>8}  {r['reason'] or r['hypothesis']}")


@click.group("trial")
def trial_group() -> None:
    """Show, approve, promote or prune one trial of a running organization."""


@trial_group.command("show")
@click.argument("trial_id")
@node_option
@state_option
def trial_show(trial_id, node, state_dir) -> None:
    """The trial's patch, objectives, replay summary and decision history (JSON)."""
    reply = _ask(state_dir, "status", node)
    record = next((r for r in reply.records if r.trial_id == trial_id or r.trial_id.endswith(trial_id)), None)
    if record is None:
        raise BadInput(f"no trial {trial_id} at {reply.controller_id}")
    data = codec.to_wire(record)
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def _action(name: str):
    @trial_group.command(name)
    @click.argument("trial_id")
    @node_option
    @click.option("--by", default="user", show_default=True, help="Who decides (recorded).")
    @state_option
    def command(trial_id, node, by, state_dir) -> None:
        reply = _ask(state_dir, name, node, trial_id=trial_id, by=by)
        click.echo(f"{name}: trial {trial_id} at {reply.controller_id}; active now "
                   f"{reply.active.trial_id if reply.active else 'none'}")
    command.help = f"{name.capitalize()} a trial of a running organization."
    return command


for _name in ("approve", "promote", "prune"):
    _action(_name)


@click.command("evolve")
@node_option
@state_option
def evolve_cmd(node, state_dir) -> None:
    """Run one generation now (audit, offspring, next trial) at an evolving metasystem."""
    _ask(state_dir, "audit", node)
    reply = _ask(state_dir, "evolve", node)
    click.echo(f"{reply.controller_id}: generation {reply.generation}; active trial "
               f"{reply.active.trial_id if reply.active else 'none'}; {len(reply.records)} trials known")


TRIAL_COMMANDS = (trials_cmd, trial_group, evolve_cmd)
