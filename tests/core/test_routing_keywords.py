"""Routing rules that match a directive's words (`keywords`) as well as its metadata, what a
keyword rule may set aside (a code-writing need that was only the mapper's default), and how a
decision says which rule or capability chose the child."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from attrs import evolve
from hypothesis import given
from hypothesis import strategies as st

from vsm_actors.core.control.harness import NotExecutable, check_executable
from vsm_actors.core.control.mapping import DirectiveTaskMapper
from vsm_actors.core.control.predicates import first_keyword
from vsm_actors.core.control.routing import CODE_WRITE_STATED, choose_child, routed_task_envelope
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.genes import RoutingRule
from vsm_actors.core.model.genome import OrganizationalGenome
from vsm_actors.core.model.ids import SequentialIds
from vsm_actors.core.model.node import ViableNode
from vsm_actors.core.model.task import Directive, RiskClass
from vsm_actors.files.genome_files import load_genome

GENOMES = Path(__file__).resolve().parent.parent.parent / "genomes"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def team(*rules: RoutingRule) -> OrganizationalGenome:
    g = OrganizationalGenome.with_root("g", ViableNode.metasystem("root", "root"))
    for name, spec in (("coder", LeafOperationSpec.coding()), ("reviewer", LeafOperationSpec.reviewer()),
                       ("tester", LeafOperationSpec.tester())):
        g = g.add_child("root", ViableNode.leaf(name, name, spec))
    return evolve(g, routing_rules=rules)


def mapped(title: str, body: str = "", risk: RiskClass = RiskClass.Medium, **metadata: str):
    """A task as the root's mapper makes it from a directive (code-writing by default)."""
    directive = Directive(id="d1", origin="user", title=title, body=body or title, risk=risk, metadata=metadata)
    return DirectiveTaskMapper().map(directive, SequentialIds("t"), controller_node_id="root")


REVIEW = RoutingRule(id="review-words", node_id="root", target_child="reviewer", keywords=("review", "audit"))
TESTS = RoutingRule(id="test-words", node_id="root", target_child="tester", keywords=("test", "run the suite"),
                    priority=-1)


# -- matching words ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Please review PR 12", "review"),
    ("REVIEW this", "review"),
    ("a re-review of (review)", "review"),
    ("review.", "review"),
    ("the reviewer looks", None),     # whole words only
    ("preview the page", None),
    ("reviews", None),                # no stemming: the genome lists the forms it means
    ("audit the logs", "audit"),
    ("", None),
])
def test_whole_words_any_case(text, expected):
    assert first_keyword(("review", "audit"), text) == expected


def test_phrases_match_across_whitespace_and_keyword_order_decides():
    assert first_keyword(("run the suite",), "please RUN  the\nsuite now") == "run the suite"
    assert first_keyword(("run the suite",), "run the suites") is None
    assert first_keyword(("audit", "review"), "review and audit") == "audit"  # the rule's order, not the text's
    assert first_keyword(("", "  "), "anything") is None
    assert first_keyword(("c++",), "port it to C++ today") == "c++"


@given(st.text(), st.text(alphabet="abcXYZ019", min_size=1))
def test_any_case_as_a_word_matches_and_inside_a_word_does_not(text, word):
    assert first_keyword((word,), f"{text} {word.swapcase()}.") == word
    assert first_keyword((word,), f"_{word}_ x{word}") is None


# -- keyword rules ---------------------------------------------------------------------------

def test_a_review_directive_reaches_the_reviewer_without_metadata():
    g = team(REVIEW, TESTS)
    task = mapped("Please review PR 12 (review only, do not write code)")
    assert task.metadata["requires_code_write"] == "true" and CODE_WRITE_STATED not in task.metadata
    decision = choose_child(g, "root", task)
    assert decision.child_id == "reviewer"
    assert decision.rule_id == "review-words" and decision.keyword == "review" and decision.code_write_waived
    assert decision.reason == ("matched routing rule review-words (keyword 'review'; "
                               "code writing was not asked for)")
    # the routed task no longer asks for code, so the reviewer's harness takes it
    out = routed_task_envelope(evolve(task, assigned_to="reviewer"), None, "root", decision, id="e1", created_at=T0)
    assert out.payload.metadata["requires_code_write"] == "false"
    assert out.payload.metadata["requires_code_write_waived_by"] == "review-words"
    assert out.metadata["routing_rule_id"] == "review-words" and out.metadata["routing_keyword"] == "review"
    check_executable(g, "reviewer", out.payload)
    with pytest.raises(NotExecutable, match="write_code"):
        check_executable(g, "reviewer", task)


def test_a_test_directive_reaches_the_tester_and_words_in_the_body_count():
    g = team(REVIEW, TESTS)
    assert choose_child(g, "root", mapped("Nightly", "Please run the suite on main")).child_id == "tester"
    assert choose_child(g, "root", mapped("Test the login flow")).child_id == "tester"
    assert choose_child(g, "root", mapped("Add a login page")).child_id == "coder"


def test_a_stated_code_write_is_never_set_aside():
    g = team(REVIEW)
    task = mapped("Review and fix PR 12", requires_code_write="true")
    assert task.metadata[CODE_WRITE_STATED] == "true"
    assert choose_child(g, "root", task).child_id == "coder"
    via_override = mapped("Review it", **{"task.metadata.requires_code_write": "true"})
    assert choose_child(g, "root", via_override).child_id == "coder"
    named = mapped("Review it", required_capability="write_code")
    assert choose_child(g, "root", named).child_id == "coder"


def test_a_named_capability_the_target_lacks_is_not_set_aside():
    # the tester cannot review: a word rule pointing at it does not override a named capability
    rule = RoutingRule(id="r", node_id="root", target_child="tester", keywords=("check",))
    decision = choose_child(team(rule), "root", mapped("Check PR 3", required_capability="review"))
    assert decision.child_id == "reviewer" and decision.rule_id is None
    assert decision.reason == "first direct leaf child with required capabilities: review"
    assert decision.capabilities == ("review",)


def test_metadata_rules_keep_the_reference_semantics():
    # a rule without keywords never sets code writing aside (evolved task-class rules rely on it)
    by_class = RoutingRule(id="docs-to-reviewer", node_id="root", target_child="reviewer", task_class="docs")
    assert choose_child(team(by_class), "root", mapped("Write docs", task_class="docs")).child_id == "coder"
    assert choose_child(team(by_class), "root", mapped("Write docs", task_class="docs",
                                                       requires_code_write="false")).child_id == "reviewer"


def test_keywords_and_other_conditions_must_all_hold():
    rule = RoutingRule(id="risky-review", node_id="root", target_child="reviewer", keywords=("review",),
                       task_class="security", risk=("high", "Critical"))

    def leaf(title, risk, task_class):
        return choose_child(team(rule), "root", mapped(title, risk=risk, task_class=task_class)).child_id

    assert leaf("Review auth", RiskClass.High, "security") == "reviewer"   # risk names match in any case
    assert leaf("Review auth", RiskClass.Critical, "security") == "reviewer"
    assert leaf("Review auth", RiskClass.Low, "security") == "coder"
    assert leaf("Review auth", RiskClass.High, "ui") == "coder"
    assert leaf("Look at auth", RiskClass.Critical, "security") == "coder"


def test_priority_then_genome_order_decides_between_matching_rules():
    first = RoutingRule(id="first", node_id="root", target_child="tester", keywords=("review",))
    second = RoutingRule(id="second", node_id="root", target_child="reviewer", keywords=("review",))
    assert choose_child(team(first, second), "root", mapped("review it")).rule_id == "first"
    assert choose_child(team(second, first), "root", mapped("review it")).rule_id == "second"
    urgent = evolve(second, priority=5)
    assert choose_child(team(first, urgent), "root", mapped("review it")).rule_id == "second"


def test_explicit_target_and_assignment_still_win_over_words():
    g = team(REVIEW)
    assert choose_child(g, "root", mapped("Review PR 1", target_child="tester")).child_id == "tester"
    assert choose_child(g, "root", evolve(mapped("Review PR 1"), assigned_to="coder")).child_id == "coder"


def test_the_decision_names_the_capability_that_chose_a_leaf():
    g = team()
    plain = choose_child(g, "root", mapped("Add a page"))
    assert plain.reason == "first direct leaf child with required capabilities"  # the reference's text
    assert plain.capabilities == ("write_code",)
    review = choose_child(g, "root", mapped("Look at it", required_capability="review"))
    assert review.child_id == "reviewer" and review.capabilities == ("review",)
    assert review.reason.endswith("required capabilities: review")
    out = routed_task_envelope(mapped("Look at it"), None, "root", review, id="e2", created_at=T0)
    assert out.metadata["routing_capabilities"] == "review" and "routing_rule_id" not in out.metadata


# -- the example genome -------------------------------------------------------------------------

@pytest.mark.parametrize("text, leaf", [
    ("Please review PR 12 (review only, do not write code)", "backend-reviewer"),
    ("Review the auth change", "backend-reviewer"),
    ("Run the backend test suite", "backend-tester"),
    ("Test the /health endpoint", "backend-tester"),
    ("Add a /health endpoint with tests", "backend-coder"),
    ("Fix the failing test", "backend-coder"),
    ("Update the changelog", "backend-coder"),
])
def test_two_level_routes_by_words(text, leaf):
    genome = load_genome(GENOMES / "two_level.yaml")
    task = mapped(text)
    hop = choose_child(genome, "root", task)
    assert hop.child_id == "backend-team"
    decision = choose_child(genome, "backend-team", task)
    assert decision.child_id == leaf
    out = routed_task_envelope(task, None, "backend-team", decision, id="e", created_at=T0)
    check_executable(genome, leaf, out.payload)  # the leaf accepts what it is sent
