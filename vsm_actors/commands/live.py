"""`vsm up|send|status|promote|down`: a long-running multiprocess organization and live changes.

`up` starts a detached server process that owns the actor system (its output goes to a log file,
so no pipe is held open by actor processes) and records the admin port in a state file;
the other commands join that system on 127.0.0.1 as clients.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import click

from .._posix import alive, kill_session, listener_of
from ..actors.protocol import Boot, Booted, RuntimeConfig, StatusReply, StatusRequest
from ..actors import signed_frames
from ..actors.supervisor import OrganizationActor
from ..actors.thespian_base import free_port, join_system, start_system
from ..views.status import render_status, status_data
from ..ledger import describe_ledger
from ..system import (
    SUPERVISOR_NAME, Organization, OrganizationError, OrganizationGone, OrganizationTimeout, check_storable,
)
from .live_keeper import StateFileKeeper, keep, keeper_running, replacement_state, state_path, stop_keeper, write_state
from ..keeper import SupervisorGaveUp, SupervisorKeeper
from ..system import supervisor_intensity
from .common import SECONDS, BadInput, build_directives, directive_options, emit_json, option_metadata, output_option
from .genome import read_genome
from .provider_config import configure_providers, provider_settings
from .results import ResultStream, result_data
from .run import DEFAULT_LEDGER, boot_mode, install_signal_shutdown, ledger_option, provider_options

state_option = click.option("--state-dir", default=lambda: os.environ.get("VSM_STATE_DIR", ".vsm"),
                            show_default=".vsm", help="Where the running organization's state file lives.")


def read_state(state_dir: str) -> dict:
    try:
        with open(state_path(state_dir), encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise BadInput(f"no running organization (no {state_path(state_dir)}); start one with `vsm up GENOME`") from None


def port_answers(port: int) -> bool:
    import socket
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def join(state: dict):
    """The running organization's actor system; anything else on its port is bad input, not a crash."""
    from thespian.actors import ActorSystemException, InvalidActorAddress
    holder = listener_of(state["admin_port"])
    sessions = set(state.get("sessions") or ())
    if holder is not None and sessions and os.getsid(holder) not in sessions:
        raise BadInput(f"port {state['admin_port']} is held by process {holder}, which is not part of this "
                       "organization; nothing was sent to it (run `vsm up` again)")
    try:
        return join_system(state["admin_port"], key=bytes.fromhex(state["key"]) if state.get("key") else None)
    except (InvalidActorAddress, ActorSystemException, ValueError) as exc:
        raise BadInput(f"port {state['admin_port']} does not answer as this organization ({exc}); another "
                       "program may hold it now: run `vsm up` again") from None


def attach(state_dir: str, timeout: float = 60.0) -> Organization:
    state = read_state(state_dir)
    if not port_answers(state["admin_port"]):
        raise BadInput(f"the organization in {state_path(state_dir)} is not running (port {state['admin_port']} "
                       f"does not answer); run `vsm up` again")
    supervisor_pid = state.get("supervisor_pid")
    if supervisor_pid is not None and not alive(supervisor_pid):
        # asking for it by name would make a new, empty supervisor that knows none of the nodes:
        # wait for the one the server boots in its place
        try:
            state = replacement_state(state_dir, supervisor_pid)
        except SupervisorGaveUp as exc:
            raise BadInput(f"the organization's supervisor (pid {supervisor_pid}) died and was not replaced "
                           f"({exc}); run `vsm down`, then `vsm up` (the ledger keeps the champion and what "
                           "finished)") from None
        supervisor_pid = state["supervisor_pid"]
    asys = join(state)
    supervisor = asys.createActor(OrganizationActor, globalName=SUPERVISOR_NAME)
    org = Organization.attach(asys, supervisor, timeout)
    org.booted = Booted(genome_id=state["genome_id"], node_count=state["node_count"], restored=True,
                        supervisor_pid=supervisor_pid)
    port = state["admin_port"]
    org.alive = lambda: port_answers(port) and (supervisor_pid is None or alive(supervisor_pid))
    org.gone_message = "the organization stopped (its admin or its supervisor no longer runs)"
    if supervisor_pid is not None and keeper_running(state, state_dir):
        org.keeper = StateFileKeeper(asys, state_dir, SUPERVISOR_NAME)
    return org


@click.command("up")
@click.argument("genome_file", type=click.Path(dir_okay=False))
@ledger_option
@provider_options
@state_option
@click.option("--fresh", is_flag=True, help="Start GENOME_FILE as it is, ignoring the ledger's champion (a file that "
              "changed starts a new lineage).")
@click.option("--resume", is_flag=True, help="Keep the ledger's evolved champion even if GENOME_FILE changed since.")
def up_cmd(genome_file, ledger, provider, script, provider_options, workspace, agent_argv, state_dir, fresh,
           resume) -> None:
    """Start GENOME_FILE as a long-running multiprocess organization (restores the ledger's champion)."""
    # bad input (the genome, provider options, a missing agent or API key) is reported here, before anything starts
    configure_providers(read_genome(genome_file), provider, script, provider_options, agent_argv, workspace)
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    if os.path.exists(state_path(state_dir)) and port_answers(read_state(state_dir)["admin_port"]):
        raise BadInput(f"an organization is already running ({state_path(state_dir)}); `vsm down` first")
    port = free_port()
    log_path = os.path.join(state_dir, "organization.log")
    # the ledger URL and provider options may hold secrets: they go to the server on its stdin,
    # never on a command line (every actor process is a fork of it and shows its argv to anyone)
    argv = [sys.executable, "-m", "vsm_actors", "_serve", genome_file, "--port", str(port), "--state-dir",
            os.path.abspath(state_dir)]
    argv += ["--if-changed", boot_mode(fresh, resume)]
    if fresh:
        argv.append("--fresh")
    settings = {"ledger": os.path.abspath(ledger) if "://" not in ledger else ledger, "provider": provider,
                "script": script, "provider_options": list(provider_options), "agent_argv": list(agent_argv),
                "workspace": os.path.abspath(workspace) if workspace else None}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=log, stderr=log, start_new_session=True)
        proc.stdin.write(json.dumps(settings).encode())
        proc.stdin.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not _state_for(state_dir, port):
        time.sleep(0.05)  # waiting for another process to finish booting, not test synchronisation
    if proc.returncode is None and not _state_for(state_dir, port):
        raise click.ClickException(f"organization did not start within 60s; see {log_path}")
    if proc.returncode == 2:  # bad input the server found (e.g. a changed genome file): say it here
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            last = [line for line in fh.read().splitlines() if line.strip()][-1:]
        raise BadInput(last[0].removeprefix("Error: ") if last else f"bad input; see {log_path}")
    if proc.returncode is not None:  # the server stays, keeping the supervisor: an exit is a failure
        raise click.ClickException(f"organization did not start; see {log_path}")
    state = read_state(state_dir)
    click.echo(f"organization up: genome {state['genome_id']} ({state['node_count']} nodes"
               f"{', restored from ledger' if state['restored'] else ''}), admin port {port}, "
               f"ledger {describe_ledger(ledger)}")


def _state_for(state_dir: str, port: int) -> bool:
    """The server wrote its state file (the organization is up), not an older run's."""
    try:
        with open(state_path(state_dir), encoding="utf-8") as fh:
            return json.load(fh).get("admin_port") == port
    except (OSError, ValueError):
        return False


@click.command("_serve", hidden=True)
@click.argument("genome_file")
@click.option("--port", type=int, required=True)
@state_option
@click.option("--fresh", is_flag=True)
@click.option("--if-changed", "if_changed", type=click.Choice(["stop", "resume", "fresh"]), default="stop")
def serve_cmd(genome_file, port, state_dir, fresh, if_changed) -> None:
    """The organization server `vsm up` starts; its ledger and provider settings arrive on stdin."""
    settings = json.loads(sys.stdin.read() or "{}")
    ledger, provider = settings.get("ledger") or DEFAULT_LEDGER, settings.get("provider") or "echo"
    script, provider_options = settings.get("script"), tuple(settings.get("provider_options") or ())
    genome = read_genome(genome_file)
    config = RuntimeConfig(ledger_url=ledger, **provider_settings(provider, script, provider_options,
                                                                  tuple(settings.get("agent_argv") or ()),
                                                                  settings.get("workspace")))
    key = signed_frames.new_key()  # this organization's frame key: in the state file, readable by its owner only
    asys = start_system("multiproc", port, log_path=os.path.join(state_dir, "thespian.log"), key=key)
    try:
        supervisor = asys.createActor(OrganizationActor, globalName=SUPERVISOR_NAME)
        booted = asys.ask(supervisor, Boot(genome=genome, config=config, restore=not fresh, if_changed=if_changed), 60)
        if isinstance(booted, Booted) and booted.changed:
            raise BadInput(booted.error)
        if not isinstance(booted, Booted) or booted.error:
            raise OrganizationError(getattr(booted, "error", None) or f"no boot reply: {booted!r}")
    except BaseException:
        asys.shutdown()
        raise
    status = asys.ask(supervisor, StatusRequest(), 60)
    pids = status.pids.values() if isinstance(status, StatusReply) else ()
    state = {"admin_port": port, "genome_file": os.path.abspath(genome_file), "ledger": describe_ledger(ledger),
             "genome_id": booted.genome_id, "node_count": booted.node_count, "restored": booted.restored,
             "started_at": time.time(), "key": key.hex(), "supervisor_pid": booted.supervisor_pid,
             "keeper_pid": os.getpid(), "supervisor_restarts": 0,
             # the actor system's process session: `down` makes sure nothing of it is left
             "sessions": sorted({os.getsid(pid) for pid in pids if pid != os.getpid()} - {os.getsid(0)})}
    keeper = SupervisorKeeper(asys, genome, config, global_name=SUPERVISOR_NAME, intensity=supervisor_intensity(config))
    if isinstance(status, StatusReply):
        keeper.note(status)
    write_state(state_dir, state)
    # no shutdown: the admin and actor processes keep running, detached from any terminal, and
    # this process stays to replace the supervisor if it dies, until `vsm down`
    sys.exit(keep(keeper, supervisor, state, state_dir, listener_of(port)))


@click.command("send")
@click.argument("texts", nargs=-1)
@click.option("--directives", "directives_file", type=click.Path(dir_okay=False),
              help="File of directives, as for `vsm run --directives`.")
@directive_options
@state_option
@click.option("--timeout", type=SECONDS, default=600.0, show_default=True,
              help="Seconds to wait for all results; what finished is printed either way.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@output_option
def send_cmd(texts, directives_file, meta, task_class, risk, capability, state_dir, timeout, quiet, output) -> None:
    """Send directive TEXT(s) to the running organization and print the results."""
    items = build_directives(texts, directives_file, option_metadata(meta, task_class, risk, capability),
                             label="TEXT")
    for item in items:
        try:
            check_storable(item)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
    org = attach(state_dir)
    install_signal_shutdown()
    stream = ResultStream(items, output, quiet=quiet, label="send")
    try:
        dones = org.run_many(items, timeout, on_done=stream)
    except KeyboardInterrupt:
        sys.exit(stream.stopped(org, "interrupted"))
    except OrganizationTimeout:
        sys.exit(stream.stopped(org, "timed out"))
    except OrganizationGone as exc:
        stream.progress.close()
        click.echo(f"vsm send: {exc}; {len(stream.finished):,} of {len(items):,} directives finished", err=True)
        if output == "json":
            emit_json([result_data(d) for d in stream.dones])
        sys.exit(1)
    except OrganizationError as exc:
        click.echo(f"vsm send: {exc}", err=True)
        sys.exit(1)
    stream.finish(dones)
    sys.exit(0 if all(d.ok for d in dones) else 1)


@click.command("status")
@state_option
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--watch", is_flag=True, help="Refresh in place until Ctrl-C.")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between refreshes (--watch).")
def status_cmd(state_dir, output, watch, interval) -> None:
    """The running organization: per node its kind, state (idle, busy with which task since when,
    paused, retired), tasks done and failed, tokens and queue; the genome and what changed since
    boot, uptime, providers, ledger and directives in flight."""
    org = attach(state_dir)
    if not watch:
        data = gather_status(org, read_state(state_dir))
        if output == "json":
            from ..files.genome_render import tree_data
            emit_json({**data, "tree": tree_data(org.status().genome), "pids": org.status().pids})
            return
        return click.echo(render_status(data))
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text
    try:
        with Live(Text(render_status(gather_status(org, read_state(state_dir)))), console=Console(),
                  auto_refresh=False) as live:
            while True:
                time.sleep(interval)  # a refresh period chosen by the user, not synchronisation
                live.update(Text(render_status(gather_status(org, read_state(state_dir)))), refresh=True)
    except KeyboardInterrupt:
        pass


def gather_status(org: Organization, state: dict | None = None) -> dict:
    from datetime import datetime, timezone
    from ..core.model.events import TraceWindow
    from ..files.genome_diff import diff_genomes
    from ..ledger import EventQuery
    reply = org.status()
    since = reply.started_at
    events = org.read_ledger("events", EventQuery(since=since)) if since else []
    traces = org.read_ledger("recent_task_traces", TraceWindow(since=since, limit=100_000)) if since else []
    changes = [c.render() for c in diff_genomes(reply.boot_genome, reply.genome)] if reply.boot_genome else []
    data = status_data(reply.genome, pids=reply.pids, restarts=reply.restarts, events=events, traces=traces,
                       now=datetime.now(timezone.utc), started_at=since, boot_genome=reply.boot_genome,
                       providers=reply.providers, ledger=reply.ledger, changes=changes)
    # what supervision sees: frames refused per process, nodes given up on, the ledger actor
    data["supervision"] = {"rejected_frames": sum(reply.rejected_frames.values()),
                           "rejected_frames_by_process": dict(sorted(reply.rejected_frames.items())),
                           "given_up": list(reply.given_up), "ledger_pid": reply.ledger_pid,
                           "supervisor_pid": org.booted.supervisor_pid,
                           "supervisor_restarts": (state or {}).get("supervisor_restarts", 0)}
    return data


@click.command("promote")
@click.argument("node")
@click.option("--child-name", required=True, help="Name of the leaf that takes over NODE's operation.")
@state_option
def promote_cmd(node, child_name, state_dir) -> None:
    """Promote a live leaf to a metasystem over a new child leaf that takes its operation."""
    org = attach(state_dir)
    try:
        reply = org.promote(node, child_name)
    except Exception as exc:  # noqa: BLE001 - e.g. unknown node name
        raise BadInput(str(exc)) from None
    if reply.error:
        raise BadInput(reply.error)
    click.echo(f"promoted {node}: new child {', '.join(reply.added)}; genome {reply.genome_id} "
               f"({reply.elapsed_ms:.2f} ms)")


@click.command("down")
@state_option
def down_cmd(state_dir) -> None:
    """Stop the running organization (the ledger keeps its champion genome for the next `up`)."""
    state = read_state(state_dir)
    stop_keeper(state, state_dir)  # first, or it would replace the supervisor being stopped
    if port_answers(state["admin_port"]):
        try:
            join(state).shutdown()
        except BadInput as exc:
            click.echo(f"vsm down: {exc.format_message()}", err=True)
    for session in state.get("sessions", ()):  # Thespian leaves an actor busy in a provider call running
        kill_session(session)
    os.remove(state_path(state_dir))
    click.echo("organization down")


LIVE_COMMANDS = (up_cmd, serve_cmd, send_cmd, status_cmd, promote_cmd, down_cmd)
