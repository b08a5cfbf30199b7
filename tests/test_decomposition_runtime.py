"""The System 3 capability split running in the actors: one directive becomes implementation,
test and review tasks on their channels, each routed to the right leaf; the directive
completes when every plan has reported."""

from __future__ import annotations

import pytest

from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.core.model.events import EventFilter, LedgerEventKind
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.ledger import open_ledger
from vsm_actors.system import Organization, make_directive

TEAM = """
id: flat-team
root:
  name: lead
  children:
    - {name: coder, leaf_operation: coding}
    - {name: tester, leaf_operation: tester}
    - {name: reviewer, leaf_operation: reviewer}
"""


@pytest.mark.parametrize("base", ["simple", "multiproc"])
def test_directive_is_split_by_capability(tmp_path, base):
    ledger_path = tmp_path / "ledger.sqlite"
    genome = parse_genome_text(TEAM, name="team.yaml")
    with Organization.start(genome, RuntimeConfig(ledger_url=str(ledger_path)), base=base) as org:
        done = org.run(make_directive("Add input validation to src/api/users.py", metadata={
            "decompose": "true", "requires_tests": "true", "requires_review": "true"}))
        assert done.ok, [r.error for r in done.results]
        by_node = sorted(r.produced_by for r in done.results)
        assert by_node == ["coder", "reviewer", "tester"]
        assert org.run("an ordinary directive").ok  # no split without the request
    with open_ledger(str(ledger_path)) as ledger:
        events = ledger.events(EventFilter(directive_id=done.directive_id))
    mapped = [e.payload["decomposition_policy"] for e in events if e.kind is LedgerEventKind.TaskMapped]
    assert mapped == ["system3_capability_split_root", "system3_capability_split_implementation",
                      "system3_capability_split_test", "system3_capability_split_review"]
    routed = {e.payload["child_node_id"]: e.payload["outbound_channel"] for e in events
              if e.kind is LedgerEventKind.TaskRouted}
    assert routed == {"coder": "ResourceBargaining", "tester": "System2Coordination",
                      "reviewer": "System2Coordination"}
