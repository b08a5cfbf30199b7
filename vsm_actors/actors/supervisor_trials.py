"""The supervisor's part in trials: actors for a candidate's nodes, stopped when the trial ends
or adopted by the champion when it is promoted; evolution commands routed to metasystems."""

from __future__ import annotations

import os

from thespian.actors import ActorExitRequest

from .evolution_shell import evolving_controllers
from .protocol import LedgerRead, CandidateEnd, CandidateStart, CandidateWorkers, EvolutionCommand, EvolutionReply, NodeSetup


class TrialSupervision:
    """Mixin for OrganizationActor."""

    def candidate_actors(self) -> dict:
        if not hasattr(self, "_candidates"):
            self._candidates = {}   # node id -> (trial id, address)
        return self._candidates

    def candidate_pids(self) -> dict:
        if not hasattr(self, "_candidate_pids"):
            self._candidate_pids = {}
        return self._candidate_pids

    def receiveMsg_CandidateStart(self, msg: CandidateStart, sender) -> None:
        from .node_actor import NodeActor
        candidates = self.candidate_actors()
        created = {}
        for node_id in msg.nodes:
            if node_id in self.directory:
                continue
            if node_id in candidates:  # a restarted controller asks again: keep the living actor
                created[node_id] = candidates[node_id][1]
                continue
            created[node_id] = self.createActor(NodeActor)
            candidates[node_id] = (msg.trial_id, created[node_id])
        directory = {**self.directory, **created}
        for node_id, address in created.items():
            spec = self.config.node_providers.get(node_id) or self.config.node_providers.get(
                msg.candidate.node(node_id).name) or self.config.provider
            self.tell(address, NodeSetup(node_id=node_id, genome=msg.candidate, directory=directory, ledger=self.ledger,
                                         supervisor=self.myAddress, provider=spec, config=self.config,
                                         organization_pid=os.getpid(), id_owner=f"{node_id}@{msg.trial_id}"))
        self.tell(sender, CandidateWorkers(trial_id=msg.trial_id, directory=created))

    def receiveMsg_CandidateEnd(self, msg: CandidateEnd, sender) -> None:
        candidates = self.candidate_actors()
        for node_id in msg.nodes:
            entry = candidates.pop(node_id, None)
            self.candidate_pids().pop(node_id, None)
            if entry is not None and node_id not in self.directory:
                self.tell(entry[1], ActorExitRequest())

    def adopt_candidates(self, adopt: dict) -> None:
        """Promotion: the candidate's actors become the champion's (their in-flight work goes on)."""
        for node_id in adopt:
            self.candidate_actors().pop(node_id, None)
            pid = self.candidate_pids().pop(node_id, None)
            if pid is not None:
                self.pids[node_id] = pid

    def receiveMsg_EvolutionCommand(self, msg: EvolutionCommand, sender) -> None:
        reply_to = msg.reply_to or sender
        controllers = evolving_controllers(self.genome) if self.config.evolution else ()
        target = msg.controller_id if msg.controller_id is not None else (controllers[0] if controllers else None)
        if target is not None:
            try:
                target = self.genome.resolve(target).id
            except Exception:  # noqa: BLE001 - an unknown name is the caller's error
                target = None
        if target not in controllers:
            known = ", ".join(controllers) or "none"
            return self.tell(reply_to, EvolutionReply(
                controller_id=msg.controller_id or "", action=msg.action, ok=False,
                error=f"{msg.controller_id} is not an evolving metasystem (evolving: {known})"))
        self.tell(self.directory[target], EvolutionCommand(
            action=msg.action, controller_id=target, trial_id=msg.trial_id, by=msg.by, reason=msg.reason,
            suggestion=msg.suggestion, envelope=msg.envelope, reply_to=reply_to))

    def receiveMsg_LedgerRead(self, msg: LedgerRead, sender) -> None:
        self.tell(self.ledger, LedgerRead(method=msg.method, args=msg.args, reply_to=msg.reply_to or sender))
