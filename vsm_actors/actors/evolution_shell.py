"""The node actor's evolution half: interprets core.evolution's decider for an evolving metasystem.

It folds the subtree's traces into the metasystem's EvolutionState, routes trial tasks to the
candidate's leaves, runs audits on the genome's schedule, starts the next trial, and turns every
Effects into ledger writes and requests to the supervisor (candidate actors, promotion). All the
decisions are core functions; nothing here decides.
"""

from __future__ import annotations

import logging

from attrs import evolve

from ..core.evolution.activation import run_generation, start_next_trial
from ..core.evolution.audit import RoutingFailure, default_policy, policy_for
from ..core.evolution.model_audit import AuditPrompt
from ..core.evolution.candidates import ChampionWrite
from ..core.evolution.controller import (
    NOTHING, AdoptPatch, Ctx, EndCandidate, Effects, StartCandidate, approve, champion_changed, decide_trial, freeze,
    ingest_suggestion, observe_environment, observe_routing_failure, observe_traces, promote, prune, routed_to_trial, run_audit, thaw,
)
from ..core.evolution.intake import ingest_audit_report, ingest_homeostat
from ..core.evolution.restore import restore_state
from ..core.evolution.trials import choose_trial_route
from ..core.control.routing import required_capabilities, routed_task_envelope, RouteDecision
from ..core.model.genome import OrganizationalGenome
from ..core.control.environment import signal_event_name
from ..core.model.payloads import AuditReport, AuditRequest, EnvironmentSignal, ThreeFourHomeostatSignal
from ..core.model.suggestion import GeneSuggestion
from ..core.model.records import EvolutionPolicy
from ..providers import ModelRequest
from .auditors import auditor_for
from .protocol import (
    CandidateEnd, CandidateStart, CandidateWorkers, EvolutionCommand, EvolutionReply, LedgerWrite,
)

log = logging.getLogger("vsm.evolution")
EVOLUTION_POLICY = EvolutionPolicy()


def evolving_controllers(genome: OrganizationalGenome) -> tuple[str, ...]:
    """Metasystems with an audit policy; when the genome declares none, the root."""
    declared = tuple(dict.fromkeys(p.node_id for p in genome.audit_policies
                                   if p.node_id in genome.nodes and genome.node(p.node_id).is_metasystem))
    if declared:
        return declared
    return (genome.root_node_id,) if genome.root.is_metasystem else ()


class EvolvingNode:
    """Mixin for NodeActor (which provides node_id, genome, directory, services, record, tell...)."""

    evo = None
    candidate_dir: dict = {}

    def setup_evolution(self, stored) -> None:
        self.evo = None
        self.candidate_dir = {}
        if not self.config.evolution or self.node_id not in evolving_controllers(self.genome):
            return
        self.evo = restore_state(self.node_id, self.genome, stored)
        self.auditor = auditor_for(policy_for(self.genome, self.node_id), self.ask_model)
        if self.evo.active is not None:  # a restarted trial needs its candidate's actors again
            self.apply_structure(StartCandidate(trial_id=self.evo.active.trial_id, candidate=self.evo.active.candidate,
                                                nodes=tuple(n for n in self.evo.active.candidate.nodes
                                                            if n not in self.genome.nodes)))

    _evo_ctx = None

    @property
    def evo_ctx(self) -> Ctx:
        # built once per genome's trial settings: it is asked for on every observed trace
        ctx = self._evo_ctx
        if ctx is None or ctx.settings is not self.genome.trial_settings or ctx.now is not self.services.now:
            ctx = self._evo_ctx = Ctx(now=self.services.now, new_id=self.services.new_id,
                                      to_json=self.services.to_json, settings=self.genome.trial_settings,
                                      policy=EVOLUTION_POLICY)
        return ctx

    # -- interpretation ------------------------------------------------------------------------

    def apply_effects(self, effects: Effects) -> None:
        records = tuple(r for r in effects.records if not isinstance(r, ChampionWrite))
        if effects.events or records:
            self.tell(self.ledger, LedgerWrite(events=effects.events, records=records))
        for change in effects.structure:
            self.apply_structure(change)

    def apply_structure(self, change) -> None:
        if isinstance(change, StartCandidate):
            if change.nodes:
                self.tell(self.supervisor, CandidateStart(trial_id=change.trial_id, controller_id=self.node_id,
                                                          candidate=change.candidate, nodes=change.nodes))
        elif isinstance(change, EndCandidate):
            self.retiring = getattr(self, "retiring", set()) | set(change.nodes)
            self.release_candidates()
        elif isinstance(change, AdoptPatch):
            from .protocol import ApplyPatches
            adopt = {n: self.candidate_dir[n] for n in change.nodes if n in self.candidate_dir}
            for n in adopt:
                self.candidate_dir.pop(n, None)
            self.tell(self.supervisor, ApplyPatches(patches=(change.patch,), genome_id=change.candidate.id,
                                                    mutation_id=change.trial_id, adopt=adopt, reply_to=self.myAddress))

    def release_candidates(self) -> None:
        """Stop candidate actors once no task of ours is still out with them (no lost work)."""
        retiring = getattr(self, "retiring", set())
        busy = {child for child, _env in self.outstanding.values()}
        done = tuple(n for n in retiring if n not in busy)
        if done:
            for n in done:
                self.candidate_dir.pop(n, None)
            self.retiring = retiring - set(done)
            self.tell(self.supervisor, CandidateEnd(trial_id="", nodes=done))

    def evolve_with(self, step, *args, **kwargs) -> None:
        self.evo, effects = step(self.evo, *args, **kwargs)
        self.apply_effects(effects)

    # -- hooks called by NodeActor --------------------------------------------------------------

    def try_trial_route(self, task, env, events: list) -> bool:
        evo = self.evo
        if evo is None or evo.active is None or evo.frozen_reason is not None:
            return False
        workers = frozenset(n for n in evo.active.candidate.nodes if n in self.directory or n in self.candidate_dir)
        route = choose_trial_route(evo.active, self.node_id, task, workers=workers, champion=evo.champion)
        if route is None:
            return False
        address = self.candidate_dir.get(route.leaf_id) or self.directory.get(route.leaf_id)
        task = evolve(task, assigned_to=route.leaf_id, metadata={
            **task.metadata, **route.tags, "routed_by": self.node_id, "routing_reason": route.reason})
        decision = RouteDecision(route.leaf_id, route.reason)
        out = routed_task_envelope(task, env, self.node_id, decision, id=self.services.new_id(),
                                   created_at=self.services.now())
        events.append(self.events.task_routed(task, self.genome.node(self.node_id).name, decision, env, out,
                                              evo.active.candidate.id))
        self.outstanding[task.id] = (route.leaf_id, out)
        self.evo, effects = routed_to_trial(evo, evo.active, self.evo_ctx, task.id, route.leaf_id)
        events.extend(effects.events)
        self.record(events)
        self.tell(address, out)
        return True

    def shadow_copy(self, task, env) -> None:
        """A shadow trial: the same task also goes to the candidate's leaf; its result is evidence only."""
        evo = self.evo
        if evo.active is None or evo.frozen_reason is not None or evo.active.record.suggestion.trial_mode.value != "Shadow":
            return
        workers = frozenset(self.candidate_dir)
        task = evolve(task, assigned_to=None)  # the champion's assignment is not the candidate's
        route = choose_trial_route(evo.active, self.node_id, task, workers=workers, shadow=True, champion=evo.champion)
        if route is None:
            return
        copy = evolve(task, assigned_to=route.leaf_id, metadata={**task.metadata, **route.tags,
                                                                  "routed_by": self.node_id, "routing_reason": route.reason})
        decision = RouteDecision(route.leaf_id, route.reason)
        out = routed_task_envelope(copy, env, self.node_id, decision, id=self.services.new_id(),
                                   created_at=self.services.now())
        events = [self.events.task_routed(copy, self.genome.node(self.node_id).name, decision, env, out,
                                          evo.active.candidate.id)]
        self.evo, effects = routed_to_trial(evo, evo.active, self.evo_ctx, copy.id, route.leaf_id)
        self.record([*events, *effects.events])
        self.tell(self.candidate_dir[route.leaf_id], out)

    def shadow_result(self, result, env, events: list) -> None:
        events.append(self.events.result_received(result, env, result.metadata.get("directive_id") or None))
        self.record(events)
        self.observe(self.observed)

    def observe(self, traces) -> None:
        if self.evo is None:
            return
        self.evo, effects = observe_traces(self.evo, traces, self.evo_ctx)
        if effects is not NOTHING:
            self.apply_effects(effects)
        self.on_schedule()

    def routing_failed(self, task) -> None:
        if self.evo is None:
            return
        self.evo = observe_routing_failure(self.evo, RoutingFailure(
            task_id=task.id, task_class=task.metadata.get("task_class", ""),
            required=tuple(required_capabilities(task))))
        self.on_schedule()

    def on_schedule(self) -> None:
        """Audit every N observed tasks (the genome's audit policy), then start a queued trial."""
        policy = policy_for(self.genome, self.node_id) or default_policy(self.node_id)
        every = policy.window_tasks if policy.window_tasks > 0 else 50
        if self.evo.since_audit >= every:
            self.evolve_with(run_audit, self.auditor, self.evo_ctx, policy)
        if self.evo.active is None and self.evo.queued and self.evo.frozen_reason is None:
            self.evolve_with(start_next_trial, self.evo_ctx, auto_approve=self.config.auto_approve)

    def champion_moved(self, genome: OrganizationalGenome) -> None:
        if self.evo is not None:
            self.evolve_with(champion_changed, genome, self.evo_ctx)

    def ask_model(self, prompt: AuditPrompt) -> str:
        """A model-directed audit's question, asked of this node's provider (the answer's text)."""
        node = self.genome.node(self.node_id)
        return self.complete(ModelRequest(model=node.model, instructions=prompt.instructions, input=prompt.input,
                                          metadata=dict(prompt.metadata))).output_text

    def on_evolution_payload(self, env) -> bool:
        """Audit requests and reports, gene suggestions, environment and 3-4 homeostat signals
        arriving on a channel (reference §3.12-3.13)."""
        payload = getattr(env, "payload", None)
        if isinstance(payload, (EnvironmentSignal, ThreeFourHomeostatSignal)):
            self.on_environment(env, payload)
            return True
        if not isinstance(payload, (AuditRequest, AuditReport, GeneSuggestion)):
            return False
        if self.evo is None:
            self.record([self.events.other("payload_ignored", {
                "payload_type": env.payload_type, "envelope_id": env.id, "reason": f"{self.node_id} does not evolve"})])
            return True
        ctx, channel = self.evo_ctx, env.channel_type.value
        if isinstance(payload, AuditRequest):
            policy = policy_for(self.genome, self.node_id) or default_policy(self.node_id)
            if payload.window_tasks:
                policy = evolve(policy, window_tasks=payload.window_tasks)
            self.evolve_with(run_audit, self.auditor, ctx, policy, source_channel=channel)
        elif isinstance(payload, AuditReport):
            self.evolve_with(ingest_audit_report, payload, ctx, suggested_by=env.source_node_id or self.node_id,
                             source_channel=channel, correlation_id=env.correlation_id)
        else:
            self.evolve_with(ingest_suggestion, payload, ctx, source_channel=channel, payload_type=env.payload_type)
        self.on_schedule_start()
        return True

    def on_environment(self, env, signal) -> None:
        """Recorded at any metasystem; pressure (and, from a homeostat, candidates) where it evolves."""
        channel = env.channel_type.value
        homeostat = isinstance(signal, ThreeFourHomeostatSignal)
        payload = {**self.services.to_json(signal), "source_channel": channel}
        event = self.events.other("three_four_homeostat_signal" if homeostat else signal_event_name(channel), payload,
                                  correlation_id=env.correlation_id, metadata={"source_channel": channel})
        self.record([event])
        if self.evo is None:
            return
        if homeostat:
            self.evolve_with(ingest_homeostat, signal, event, self.evo_ctx, source_channel=channel,
                             correlation_id=env.correlation_id)
            self.on_schedule_start()
        else:
            self.evo = observe_environment(self.evo, event)

    # -- messages --------------------------------------------------------------------------------

    def receiveMsg_CandidateWorkers(self, msg: CandidateWorkers, sender) -> None:
        active = self.evo.active if self.evo is not None else None
        if active is None or active.trial_id != msg.trial_id:  # the trial ended meanwhile
            self.tell(self.supervisor, CandidateEnd(trial_id=msg.trial_id, nodes=tuple(msg.directory)))
            waiting, self.waiting_replies = getattr(self, "waiting_replies", []), []
            for reply_to, reply in waiting:
                self.tell(reply_to, reply)
            return
        self.candidate_dir.update(msg.directory)
        waiting, self.waiting_replies = getattr(self, "waiting_replies", []), []
        for reply_to, reply in waiting:
            self.tell(reply_to, reply)

    def receiveMsg_EvolutionCommand(self, msg: EvolutionCommand, sender) -> None:
        reply_to = msg.reply_to or sender
        if self.evo is None:
            return self.tell(reply_to, EvolutionReply(controller_id=self.node_id or "", action=msg.action, ok=False,
                                                      error=f"{self.node_id} does not evolve"))
        ctx, action, message = self.evo_ctx, msg.action, ""
        active = self.evo.active
        try:
            if action == "audit":
                policy = policy_for(self.genome, self.node_id) or default_policy(self.node_id)
                self.evolve_with(run_audit, self.auditor, ctx, policy)
            elif action == "evolve":
                self.evolve_with(run_generation, ctx)
            elif action == "start":
                pass
            elif action == "approve":
                self.evolve_with(approve, msg.trial_id, msg.by, ctx)
            elif action in ("promote", "prune", "decide"):
                if active is None or (msg.trial_id and active.trial_id != msg.trial_id):
                    raise ValueError(f"no active trial {msg.trial_id or ''} at {self.node_id}".replace("  ", " "))
                step = {"promote": promote, "prune": prune}.get(action)
                if step is None:
                    self.evolve_with(decide_trial, ctx, force=True)
                else:
                    self.evolve_with(step, ctx)
            elif action == "freeze":
                self.evolve_with(freeze, msg.reason or "algedonic freeze", ctx)
            elif action == "thaw":
                self.evo = thaw(self.evo)
            elif action == "suggest":
                self.evolve_with(ingest_suggestion, msg.suggestion, ctx)
            elif action == "deliver":
                if not self.on_evolution_payload(msg.envelope):
                    raise ValueError(f"{getattr(msg.envelope, 'payload_type', msg.envelope)!r} is not an audit request, "
                                     "audit report or gene suggestion")
            elif action != "status":
                raise ValueError(f"unknown evolution action: {action}")
            if action in ("audit", "evolve", "start", "approve", "thaw", "suggest"):
                self.on_schedule_start()
        except ValueError as exc:
            return self.tell(reply_to, EvolutionReply(controller_id=self.node_id, action=action, ok=False,
                                                      error=str(exc)))
        evo = self.evo
        reply = EvolutionReply(
            controller_id=self.node_id, action=action, message=message,
            active=evo.active.record if evo.active else None, records=evo.records, generation=evo.generation)
        if evo.active is not None and any(n not in self.directory and n not in self.candidate_dir
                                          for n in evo.active.candidate.nodes):
            # answer once the candidate's actors can take work: on the TCP base the supervisor's
            # CandidateWorkers and the caller's next directive are not ordered
            self.waiting_replies = [*getattr(self, "waiting_replies", []), (reply_to, reply)]
            return
        self.tell(reply_to, reply)

    def on_schedule_start(self) -> None:
        if self.evo.active is None and self.evo.queued and self.evo.frozen_reason is None:
            self.evolve_with(start_next_trial, self.evo_ctx, auto_approve=self.config.auto_approve)
