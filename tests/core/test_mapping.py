"""Directive intake: static predicate extraction, DirectiveTaskMapper and the System 3 capability split."""

from __future__ import annotations

import pytest
from attrs import evolve
from hypothesis import given
from hypothesis import strategies as st

from vsm_actors.core.model.capability import LeafOperationKind, LeafOperationSpec
from vsm_actors.core.model.channel import VsmChannelType
from vsm_actors.core.model.genome import OrganizationalGenome
from vsm_actors.core.model.ids import SequentialIds
from vsm_actors.core.control.mapping import (
    DecompositionRole,
    DirectiveTaskMapper,
    decompose,
    target_child_for_role,
    wants_decomposition,
)
from vsm_actors.core.model.node import NodeLifecycleStatus, System3Config, ViableNode
from vsm_actors.core.control.predicates import (
    DomainKeywordHint,
    _mentions,
    extract_static_predicates,
    is_truthy,
    path_like_tokens,
    split_list_items,
)
from vsm_actors.core.model.task import Directive, RiskClass

REPO = ("Cargo.toml", "crates/vsm-controller/src/mapper.rs", "crates/vsm-controller/src/runtime.rs",
        "crates/vsm-core/src/task.rs", "crates/vsm-worker/src/harness.rs")


def directive(title: str = "Do work", body: str = "", **kw) -> Directive:
    kw.setdefault("origin", "user")
    return Directive(id="dir-1", title=title, body=body, **kw)


def predicates(body: str = "", repo=(), hints=(), **kw):
    return extract_static_predicates(directive(body=body, **kw), repo, hints)


# -- reference tests (mapper.rs) -------------------------------------------------------------------


def test_mapper_extracts_static_predicates_from_repository_inventory():
    """Reference #17: inventory, Cargo.toml rule, languages, modules, hint marker, cargo test, scope."""
    mapper = DirectiveTaskMapper().with_repository_files(REPO).with_domain_keyword_hints(
        [("predicate_extraction", ["predicate", "predicates", "static predicates"])])
    task = mapper.map(directive(
        "Improve mapper predicates",
        "Update mapper.rs so TaskPacket static predicates identify Cargo.toml dependency changes. "
        "Run cargo test -p vsm-controller."), SequentialIds("task"))
    sp = task.static_predicates
    assert {"crates/vsm-controller/src/mapper.rs", "Cargo.toml"} <= set(sp.likely_files)
    assert {"rust", "toml"} <= set(sp.languages)
    assert "vsm-controller" in sp.modules
    assert sp.config_touched
    assert sp.domain_markers["predicate_extraction"] == "true"
    assert "cargo test" in sp.test_targets
    assert task.scope == sp.likely_files
    assert task.metadata["estimated_files_touched"] == str(len(sp.likely_files))


def test_mapper_merges_explicit_static_predicate_metadata():
    """Reference #18: list, marker and blast-radius metadata merge into the heuristics."""
    task = DirectiveTaskMapper().map(directive("Patch ledger persistence", metadata={
        "static_predicates.likely_files": "crates/vsm-core/src/task.rs, README.md",
        "static_predicates.languages": "rust,markdown",
        "static_predicates.dependencies": "serde_json",
        "static_predicates.domain_markers": "storage=sqlite,ledger=true",
        "static_predicates.domain_marker.persistence": "durable",
        "estimated_blast_radius": "critical",
    }), SequentialIds("task"))
    sp = task.static_predicates
    assert sp.estimated_blast_radius is RiskClass.Critical
    assert {"storage": "sqlite", "ledger": "true", "persistence": "durable"}.items() <= sp.domain_markers.items()
    assert not sp.auth_touched and not sp.database_touched
    assert "README.md" in sp.likely_files and "serde_json" in sp.dependencies and "markdown" in sp.languages


# -- path-like tokens and repository inventory -----------------------------------------------------


def test_path_tokens_shed_quotes_brackets_and_trailing_dots():
    """Edge punctuation goes, a token is kept for a `/` or a known extension (any case)."""
    corpus = "Edit `src/lib.rs`, (docs/guide.md) [a/b] NOTES.MD; config.yaml... and plain words. x.txt"
    assert path_like_tokens(corpus) == ["src/lib.rs", "docs/guide.md", "a/b", "NOTES.MD", "config.yaml"]


def test_path_tokens_strip_each_edge_class_once():
    """As in the reference the two strips run once each, so a bracket before a final dot survives."""
    assert path_like_tokens("(see src/foo.rs).") == ["src/foo.rs)"]
    assert path_like_tokens("'src/foo.rs.'") == ["src/foo.rs"]


def test_inventory_matches_full_path_basename_and_stem():
    """Whole paths, file names of 5+ chars and stems of 4+ chars match; short names do not."""
    repo = ("src/handlers/session_store.py", "lib/abc.py", "docs/guide.md", "src/app.py", "pkg/Main.go")
    sp = predicates("Fix session_store, then abc.py, see the Guide and main; the app is fine", repo)
    assert set(sp.likely_files) == {"src/handlers/session_store.py", "lib/abc.py", "docs/guide.md",
                                    "pkg/Main.go", "abc.py"}
    assert predicates("touch src/app.py please", repo).likely_files == ("src/app.py",)


def test_cargo_rule_adds_every_manifest_only_when_dependencies_are_mentioned():
    """`cargo`/`crate`/`dependency` words pull in Cargo.toml files, nothing else named like one."""
    repo = ("Cargo.toml", "crates/x/Cargo.toml", "crates/x/src/lib.rs", "notCargo.toml")
    assert predicates("Bump a dependency", repo).likely_files == ("Cargo.toml", "crates/x/Cargo.toml")
    assert predicates("Rename a function", repo).likely_files == ()


def test_corpus_includes_desired_state_constraints_and_metadata_values():
    """Every text field of the directive feeds the heuristics, metadata values but not keys."""
    sp = predicates(desired_state="a/state.md", constraints=("keep b/rule.py",),
                    metadata={"note": "c/meta.json", "d/key.rs": "value"})
    assert sp.likely_files == ("a/state.md", "b/rule.py", "c/meta.json")


# -- languages and per-file predicates -------------------------------------------------------------


def test_languages_from_words_and_extensions():
    """Words and extension substrings imply languages; "sqlite" implies sql and ".json" javascript."""
    assert set(predicates("Port the python tool to typescript").languages) == {"python", "typescript"}
    assert set(predicates("Move the cache to sqlite; update the readme").languages) == {"sql", "markdown"}
    assert "javascript" in predicates("update settings.json").languages
    assert set(predicates("web/app.tsx and scripts/run.jsx").languages) == {"typescript", "javascript"}
    assert set(predicates("crate work").languages) == {"rust"}
    assert predicates("nothing technical here").languages == ()


def test_migration_and_sql_files_touch_the_database():
    """Migration paths set migration and database flags, .sql files add the data_store marker."""
    sp = predicates("Apply db/migrations/0001_init.sql")
    assert sp.migration_touched and sp.database_touched
    assert sp.domain_markers == {"data_store": "sql", "migration": "true"}
    assert sp.estimated_blast_radius is RiskClass.High
    assert predicates("edit src/migration_helpers.rs").migration_touched


def test_auth_and_security_paths_set_both_flags_but_their_own_marker():
    """A path naming auth or security marks the task auth-touched and security-sensitive."""
    auth = predicates("src/auth/login.py")
    assert auth.auth_touched and auth.security_sensitive
    assert auth.domain_markers == {"auth": "true"}
    sec = predicates("lib/policy_store/security_checks.rb")
    assert sec.auth_touched and sec.security_sensitive and sec.domain_markers == {"security": "true"}


def test_api_route_and_config_paths():
    """api/route paths are public interfaces; manifests and data files are configuration."""
    api = predicates("src/api/handlers.py")
    assert api.public_api_touched and api.domain_markers == {"public_interface": "true"}
    assert api.estimated_blast_radius is RiskClass.Medium
    yaml = predicates("deploy/app.yaml")
    assert yaml.config_touched and yaml.domain_markers == {"configuration": "true"}
    plain_toml = predicates("tools/fmt.toml")
    assert plain_toml.config_touched and plain_toml.domain_markers == {}
    assert predicates("crates/x/Cargo.toml").domain_markers == {"configuration": "true"}


def test_test_targets_keep_the_original_case():
    """Test-looking files become test targets verbatim; other files do not."""
    sp = predicates("src/foo_test.go web/a.test.ts Pkg/Tests/X.py src/plain.go")
    assert sp.test_targets == ("Pkg/Tests/X.py", "src/foo_test.go", "web/a.test.ts")


def test_modules_from_crate_segments_and_stems():
    """`crates/<name>` names a module, so does a file stem of 3+ chars."""
    assert predicates("crates/vsm-core/src/lib.rs").modules == ("lib", "vsm-core")
    assert predicates("a/io.rs").modules == ()


def test_files_named_only_in_metadata_skip_the_per_file_rules():
    """Explicit likely_files that do not look like paths get no flags, markers or modules."""
    sp = predicates(metadata={"likely_files": "Dockerfile.auth"})
    assert sp.likely_files == ("Dockerfile.auth",)
    assert not sp.auth_touched and sp.modules == () and sp.domain_markers == {}
    # metadata values are also corpus text, so a path-like value does go through the file rules
    assert predicates(metadata={"likely_files": "src/auth/x.sql"}).auth_touched


# -- text predicates and hints ---------------------------------------------------------------------


def test_text_predicates():
    """Security words, interface words, settings words, verification words and `cargo test`."""
    sec = predicates("Rotate the leaked credential")
    assert sec.security_sensitive and not sec.auth_touched and sec.domain_markers == {"security": "true"}
    assert sec.estimated_blast_radius is RiskClass.High
    assert predicates("Add an endpoint").public_api_touched
    assert predicates("Change user settings").config_touched
    assert predicates("Verify the output").tags == ("verification",)
    assert predicates("run cargo test").test_targets == ("cargo test",)
    assert predicates("Rename a function").estimated_blast_radius is None


def test_domain_keyword_hints_are_case_insensitive_substrings():
    """A hint fires when any keyword occurs anywhere in the corpus, whatever the case."""
    hints = (DomainKeywordHint(marker="billing", keywords=("Invoice", "payment")),
             DomainKeywordHint(marker="unused", keywords=("zzz",)))
    assert predicates("Fix INVOICES rounding", hints=hints).domain_markers == {"billing": "true"}


# -- explicit metadata merge -----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["tags", "task.tags", "task.metadata.tags", "static_predicates.tags",
                                 "task.static_predicates.tags"])
def test_list_metadata_accepts_all_five_key_variants(key):
    """Each spelling of a list key contributes items."""
    assert predicates(metadata={key: "alpha"}).tags == ("alpha",)


def test_list_items_split_on_every_separator_and_are_normalised():
    """Items split on , ; | newline, are trimmed, deduplicated and sorted across variants."""
    assert split_list_items(" a, b;c |d\n\n,") == ["a", "b", "c", "d"]
    sp = predicates(metadata={"dependencies": "serde, tokio", "task.static_predicates.dependencies": "anyhow|serde"})
    assert sp.dependencies == ("anyhow", "serde", "tokio")


def test_domain_markers_items_and_prefixed_keys():
    """`k=v` or bare `k` items, plus the three `domain_marker.` prefixes; empty parts are skipped."""
    sp = predicates(metadata={
        "task.domain_markers": " tier = gold ; flagged ; =orphan ; empty= ",
        "domain_marker.team": "core",
        "static_predicates.domain_marker.region": "eu",
        "task.static_predicates.domain_marker.owner": "ops",
        "domain_marker.": "nameless",
    })
    assert sp.domain_markers == {"flagged": "true", "owner": "ops", "region": "eu", "team": "core", "tier": "gold"}
    assert list(sp.domain_markers) == sorted(sp.domain_markers)


def test_bool_flags_use_the_last_present_variant_and_never_clear():
    """The last spelling present decides; a falsy value cannot undo a derived flag."""
    overridden = predicates(metadata={"auth_touched": "true", "task.static_predicates.auth_touched": "no"})
    assert overridden.auth_touched is False
    assert predicates(metadata={"auth_touched": "no", "static_predicates.auth_touched": "YES"}).auth_touched
    assert predicates(metadata={"task.metadata.migration_touched": "1"}).migration_touched
    assert predicates("src/auth/a.py", metadata={"auth_touched": "false"}).auth_touched


def test_truthiness_rule():
    """Truthy is exactly "true", "1" or "yes" in any case."""
    assert [is_truthy(v) for v in ("true", "1", "yes", "Yes", "YES")] == [True] * 5
    assert [is_truthy(v) for v in ("True", "TRUE", "on", "0", "", None)] == [False] * 6


def test_explicit_blast_radius_is_case_insensitive_and_unparsable_falls_back():
    """An explicit radius wins; a bad one is dropped and the derived radius applies."""
    assert predicates(metadata={"task.estimated_blast_radius": "LOW"}).estimated_blast_radius is RiskClass.Low
    assert predicates("src/auth/a.py", metadata={"estimated_blast_radius": "huge"}).estimated_blast_radius \
        is RiskClass.High
    last = predicates(metadata={"estimated_blast_radius": "low", "static_predicates.estimated_blast_radius": "High"})
    assert last.estimated_blast_radius is RiskClass.High


def test_derived_blast_radius_order():
    """High for security/data, Medium for interfaces/config, Low for any file, else None."""
    assert predicates("docs/a.md").estimated_blast_radius is RiskClass.Low
    assert predicates(metadata={"database_touched": "true"}).estimated_blast_radius is RiskClass.High
    assert predicates(metadata={"config_touched": "true"}).estimated_blast_radius is RiskClass.Medium
    assert predicates().estimated_blast_radius is None


# -- DirectiveTaskMapper.map -----------------------------------------------------------------------


def test_map_copies_directive_fields_and_lineage():
    """Title, body, desired state, constraints, risk, origin and directive id carry over."""
    ids = SequentialIds("task")
    task = DirectiveTaskMapper().map(directive("T", "see docs/a.md", desired_state="done", constraints=("c1",),
                                               risk=RiskClass.Low, origin="ops"), ids)
    assert (task.id, task.title, task.goal, task.target_state, task.constraints, task.risk) == \
        ("task-1", "T", "see docs/a.md", "done", ("c1",), RiskClass.Low)
    assert task.directive_id == "dir-1" and ids() == "task-2"
    assert task.metadata == {"origin": "ops", "mapped_from_directive": "dir-1", "requires_code_write": "true",
                             "estimated_files_touched": "1"}
    assert task.scope == ("docs/a.md",)


def test_requires_code_write_comes_from_exact_true_else_the_default():
    """Only the exact string "true" requests code writing; an absent key uses the mapper default."""
    def write(mapper, **meta):
        return mapper.map(directive(metadata=meta), SequentialIds()).metadata["requires_code_write"]

    readonly = DirectiveTaskMapper(default_requires_code_write=False)
    assert write(DirectiveTaskMapper()) == "true" and write(readonly) == "false"
    assert write(readonly, requires_code_write="true") == "true"
    assert write(DirectiveTaskMapper(), requires_code_write="yes") == "false"


def test_copied_keys_and_task_metadata_overrides():
    """Selected keys are copied verbatim, and `task.metadata.<k>` overrides anything."""
    meta = {"required_capability": "review", "target_child": "reviewer", "requires_review": "true",
            "trial_approved": "s1", "task_class": "docs", "estimated_files_touched": "9", "other": "x",
            "task.metadata.origin": "override", "task.metadata.requires_code_write": "false",
            "task.metadata.decomposition_authority": "system3_model"}
    task = DirectiveTaskMapper().map(directive(body="a/b.rs", metadata=meta), SequentialIds())
    for key in ("required_capability", "target_child", "requires_review", "trial_approved", "task_class"):
        assert task.metadata[key] == meta[key]
    assert task.metadata["estimated_files_touched"] == "9"
    assert task.metadata["origin"] == "override" and task.metadata["requires_code_write"] == "false"
    assert task.metadata["decomposition_authority"] == "system3_model"
    assert "other" not in task.metadata and "estimated_files_touched" not in DirectiveTaskMapper().map(
        directive(), SequentialIds()).metadata


@pytest.mark.parametrize("risk,expected", [(RiskClass.Low, None), (RiskClass.Medium, None),
                                           (RiskClass.High, "true"), (RiskClass.Critical, "true")])
def test_high_risk_requires_parent_review(risk, expected):
    """High and Critical directives always ask for parent review, after every override."""
    meta = {"task.metadata.requires_parent_review": "false"} if expected else {}
    task = DirectiveTaskMapper().map(directive(risk=risk, metadata=meta), SequentialIds())
    assert task.metadata.get("requires_parent_review") == expected


# -- System 3 capability split ---------------------------------------------------------------------


def leaf(node_id: str, spec: LeafOperationSpec, **kw) -> ViableNode:
    return ViableNode.leaf(node_id, node_id, spec, **kw)


def org(*children: ViableNode, root: ViableNode | None = None) -> OrganizationalGenome:
    genome = OrganizationalGenome.with_root("g", root or ViableNode.metasystem("root", "root"))
    for child in children:
        genome = genome.add_child("root", child)
    return genome


def f2() -> OrganizationalGenome:
    return org(leaf("coder", LeafOperationSpec.coding()), leaf("reviewer", LeafOperationSpec.reviewer()),
               leaf("tester", LeafOperationSpec.tester()))


def split(genome: OrganizationalGenome, ids=None, risk=RiskClass.Medium, mapper=None, **meta):
    d = directive("Implement feature", "see src/a.rs", constraints=("c",), risk=risk, metadata=meta)
    task = (mapper or DirectiveTaskMapper()).map(d, SequentialIds("root"))
    task = evolve(task, metadata={**task.metadata, "controller_node_id": "root"})
    return decompose(task, genome.node("root"), genome, ids or SequentialIds("child"), directive_metadata=d.metadata)


def test_wants_decomposition_variants():
    """decompose / decomposition_policy, with or without task.metadata., and a willing System 3."""
    node = ViableNode.metasystem("root", "root")
    for meta in ({"decompose": "1"}, {"task.metadata.decompose": "YES"},
                 {"decomposition_policy": "system3_capability_split"},
                 {"task.metadata.decomposition_policy": "system3_capability_split"}):
        assert wants_decomposition(meta, node)
        assert wants_decomposition(directive(metadata=meta), node)
    assert not wants_decomposition({"decompose": "no", "decomposition_policy": "other"}, node)
    unwilling = evolve(node, system_3=System3Config(can_decompose_tasks=False))
    assert not wants_decomposition({"decompose": "true"}, unwilling)


def test_no_plan_without_request_or_authority():
    """Without a request, or when System 3 may not decompose, the directive stays one task."""
    assert split(f2()) is None
    genome = org(leaf("coder", LeafOperationSpec.coding()),
                 root=ViableNode.metasystem("root", "root", system_3=System3Config(can_decompose_tasks=False)))
    assert split(genome, decompose="true") is None


def test_split_with_tests_and_review_mirrors_the_reference():
    """Reference #38: implementation -> coder, then test -> tester and review -> reviewer, both after it."""
    plan = split(f2(), decompose="true", requires_tests="true", requires_review="true")
    impl, test, review = plan.plans
    assert [p.role for p in plan.plans] == [DecompositionRole.Implementation, DecompositionRole.Test,
                                            DecompositionRole.Review]
    assert [p.task.metadata["target_child"] for p in plan.plans] == ["coder", "tester", "reviewer"]
    assert [p.channel for p in plan.plans] == [VsmChannelType.ResourceBargaining,
                                               VsmChannelType.System2Coordination, VsmChannelType.System2Coordination]
    assert impl.task.dependencies == () and test.task.dependencies == review.task.dependencies == (impl.task.id,)
    assert [p.task.id for p in plan.plans] == ["child-1", "child-2", "child-3"]
    assert all(p.task.parent_task_id == plan.root.id == "root-1" for p in plan.plans)
    assert [p.role.mapped_policy for p in plan.plans] == [
        "system3_capability_split_implementation", "system3_capability_split_test",
        "system3_capability_split_review"]
    assert [p.task.metadata["required_capability"] for p in plan.plans] == ["write_code", "run_tests", "review"]


def test_root_and_child_metadata():
    """The root is labelled and counted; children carry lineage and inherit the rest but target_child."""
    plan = split(f2(), decompose="true", requires_review="true", target_child="coder")
    root = plan.root
    assert {k: root.metadata[k] for k in ("decomposition_policy", "decomposition_authority", "decomposition_root",
                                          "decomposition_task_count", "target_child")} == {
        "decomposition_policy": "system3_capability_split_v1", "decomposition_authority": "system3",
        "decomposition_root": "true", "decomposition_task_count": "2", "target_child": "coder"}
    impl, review = plan.plans
    assert review.task.metadata["target_child"] == "reviewer"
    for child in (impl.task, review.task):
        meta = child.metadata
        assert meta["decomposition_policy"] == "system3_capability_split_v1"
        assert meta["decomposition_authority"] == "system3"
        assert meta["decomposition_parent_task_id"] == root.id
        assert meta["controller_node_id"] == "root" and meta["origin"] == "user"
        assert "decomposition_root" not in meta and "decomposition_task_count" not in meta
        assert (child.directive_id, child.scope, child.constraints, child.risk, child.static_predicates) == \
            (root.directive_id, root.scope, root.constraints, root.risk, root.static_predicates)
    assert impl.task.metadata["decomposition_role"] == "implementation"
    assert (impl.task.title, impl.task.goal) == ("Implement: Implement feature", root.goal)
    assert (review.task.title, review.task.goal) == (
        "Review: Implement feature", "Review the implementation for directive task root-1")


def test_requires_code_write_per_role():
    """Implementation keeps the root's value; test, review and integration never write code."""
    plan = split(f2(), decompose="true", requires_tests="true", requires_review="true", requires_code_write="false")
    assert [p.task.metadata["requires_code_write"] for p in plan.plans] == ["false", "false", "false"]
    plan = split(f2(), decompose="true", requires_tests="true")
    assert [p.task.metadata["requires_code_write"] for p in plan.plans] == ["true", "false"]


def test_implementation_only_when_nothing_else_is_requested():
    """The implementation plan always exists; the count reflects it alone."""
    plan = split(f2(), decompose="true")
    assert [p.role for p in plan.plans] == [DecompositionRole.Implementation]
    assert plan.root.metadata["decomposition_task_count"] == "1"


@pytest.mark.parametrize("meta", [{"test_targets": ""}, {"task.metadata.test_targets": "x"}])
def test_test_plan_requested_by_test_target_keys(meta):
    """The mere presence of a test_targets key asks for a test child."""
    plan = split(f2(), decompose="true", **meta)
    assert plan.plans[1].role is DecompositionRole.Test
    assert plan.plans[1].task.goal == "Verify the implementation for directive task root-1"


def test_high_risk_requests_review():
    """High and Critical directives get a review child without asking."""
    plan = split(f2(), risk=RiskClass.High, decompose="true")
    assert [p.role for p in plan.plans] == [DecompositionRole.Implementation, DecompositionRole.Review]


def test_optional_plans_need_a_capable_child():
    """No reviewer and no integrator means no review or integration child; a coder can run tests."""
    genome = org(leaf("coder", LeafOperationSpec.coding()))
    plan = split(genome, decompose="true", requires_tests="true", requires_review="true", requires_integration="true")
    assert [(p.role, p.task.metadata["target_child"]) for p in plan.plans] == [
        (DecompositionRole.Implementation, "coder"), (DecompositionRole.Test, "coder")]
    empty = split(org(leaf("doc", LeafOperationSpec())), decompose="true")
    assert "target_child" not in empty.plans[0].task.metadata


def test_integration_depends_on_every_earlier_plan():
    """The integration child waits for implementation, test and review."""
    integrator = leaf("integrator", LeafOperationSpec(kind=LeafOperationKind.Integration, allows_integration=True))
    genome = f2().add_child("root", integrator)
    plan = split(genome, decompose="true", requires_tests="true", requires_review="true", requires_integration="1")
    *earlier, integration = plan.plans
    assert integration.role is DecompositionRole.Integration
    assert integration.task.dependencies == tuple(p.task.id for p in earlier)
    assert integration.task.metadata["target_child"] == "integrator"
    assert integration.channel is VsmChannelType.System2Coordination
    assert integration.task.title == "Integrate: Implement feature"
    assert plan.root.metadata["decomposition_task_count"] == "4"


def test_target_child_prefers_kind_then_capability_and_skips_retired():
    """A leaf of the role's kind wins over an earlier capable leaf; Retired children are invisible."""
    generalist = leaf("generalist", LeafOperationSpec(allows_code_write=True, allows_review=True))
    genome = org(generalist, leaf("coder", LeafOperationSpec.coding()))
    root = genome.node("root")
    assert target_child_for_role(genome, root, DecompositionRole.Implementation) == "coder"
    assert target_child_for_role(genome, root, DecompositionRole.Review) == "generalist"
    assert target_child_for_role(genome, root, DecompositionRole.Integration) is None
    retired = org(leaf("old-coder", LeafOperationSpec.coding(), status=NodeLifecycleStatus.Retired),
                  leaf("tester", LeafOperationSpec.tester(), status=NodeLifecycleStatus.Retired),
                  leaf("generalist", LeafOperationSpec(allows_code_write=True)))
    assert target_child_for_role(retired, retired.node("root"), DecompositionRole.Implementation) == "generalist"
    assert target_child_for_role(retired, retired.node("root"), DecompositionRole.Test) is None


def test_metasystem_child_can_take_integration():
    """Metasystem children hold `integrate`, so they receive integration when no integrator exists."""
    genome = org(leaf("coder", LeafOperationSpec.coding()), ViableNode.metasystem("team", "team"))
    genome = genome.add_child("team", leaf("inner", LeafOperationSpec.coding()))
    assert target_child_for_role(genome, genome.node("root"), DecompositionRole.Integration) == "team"


def test_request_keys_default_to_the_task_metadata():
    """Without directive metadata only what the mapper copied counts, e.g. task.metadata.decompose."""
    genome = f2()
    d = directive(metadata={"task.metadata.decompose": "true", "requires_tests": "true"})
    task = DirectiveTaskMapper().map(d, SequentialIds())
    plan = decompose(task, genome.node("root"), genome, SequentialIds("c"))
    assert [p.role for p in plan.plans] == [DecompositionRole.Implementation]
    assert decompose(evolve(task, metadata={}), genome.node("root"), genome, SequentialIds()) is None


@given(st.text(alphabet="abc .|*(\\", max_size=30), st.lists(st.text(alphabet="abc .|*(\\", max_size=4), min_size=1, max_size=4))
def test_mentions_is_plain_substring_search(corpus, needles) -> None:
    """Needles are literal text, whatever regex syntax they hold."""
    assert _mentions(corpus, tuple(needles)) == any(n in corpus for n in needles)
