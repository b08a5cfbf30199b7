"""`vsm signal pain|pleasure --node ID --severity N [--pause|--resume|--escalate|--freeze]` and
`vsm resume NODE`: algedonic signals to a running organization, applied by the metasystem above
the node (the root's own for the root), reference §3.9."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from ..core.model.payloads import AlgedonicOverridePolicy, AlgedonicSignal, AlgedonicSourceKind, AlgedonicValence
from .common import BadInput, emit_json
from .live import attach, state_option


def send_signal(state_dir: str, node: str, signal: AlgedonicSignal, output: str) -> None:
    reply = attach(state_dir).signal(node, signal)
    if reply.error:
        raise BadInput(reply.error)
    if output == "json":
        emit_json({"node_id": reply.node_id, "actions": list(reply.actions), "paused": list(reply.paused)})
        return
    click.echo(f"{reply.node_id}: {', '.join(reply.actions) or 'recorded (no override asked for)'}")
    click.echo(f"paused at {reply.node_id}: {', '.join(reply.paused) or 'nothing'}")


@click.command("signal")
@click.argument("valence", type=click.Choice(["pain", "pleasure"]))
@click.option("--node", required=True, help="The node the signal is about (id or name).")
@click.option("--severity", type=click.IntRange(0, 10), default=5, show_default=True)
@click.option("--pause", is_flag=True, help="Pause the node's subtree: nothing is routed into it; work waits.")
@click.option("--resume", is_flag=True, help="Resume the node's subtree: what waited goes on.")
@click.option("--escalate", is_flag=True, help="Escalate one level at a time to the root.")
@click.option("--freeze", is_flag=True, help="Freeze the active mutation trial of the metasystem above it.")
@click.option("--confirm", "confirm", is_flag=True, help="Require human confirmation (recorded on the pause).")
@click.option("--source", type=click.Choice([s.value for s in AlgedonicSourceKind]), default="User",
              show_default=True)
@click.option("--reason", default="", help="Why (recorded, and shown on a pause).")
@state_option
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def signal_cmd(valence, node, severity, pause, resume, escalate, freeze, confirm, source, reason, state_dir,
               output) -> None:
    """Send an algedonic signal about NODE to the running organization."""
    if pause and resume:
        raise BadInput("--pause and --resume contradict each other; send one")
    policy = AlgedonicOverridePolicy(pause_subtree=pause, resume_subtree=resume, escalate_to_root=escalate,
                                     freeze_mutation=freeze, require_human_confirmation=confirm)
    any_override = pause or resume or escalate or freeze or confirm
    signal = AlgedonicSignal(source=AlgedonicSourceKind(source), valence=AlgedonicValence(valence.capitalize()),
                             severity=severity, message=reason or f"{valence} from the command line",
                             override_policy=policy if any_override else None, created_at=datetime.now(timezone.utc))
    send_signal(state_dir, node, signal, output)


@click.command("resume")
@click.argument("node")
@click.option("--reason", default="resumed from the command line")
@state_option
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def resume_cmd(node, reason, state_dir, output) -> None:
    """Resume NODE's paused subtree (a pleasure signal with resume_subtree)."""
    signal = AlgedonicSignal(source=AlgedonicSourceKind.User, valence=AlgedonicValence.Pleasure, severity=1,
                             message=reason, override_policy=AlgedonicOverridePolicy(resume_subtree=True),
                             created_at=datetime.now(timezone.utc))
    send_signal(state_dir, node, signal, output)


SIGNAL_COMMANDS = (signal_cmd, resume_cmd)
