"""One bad value costs its own record, not its batch (issue 11 point 6): text that cannot be stored
is refused at the edge, and when such a value reaches the ledger anyway, its batch is committed
without it and the record left out is named in a `ledger_record_rejected` event."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from vsm_actors.actors.protocol import RuntimeConfig, SubmitDirective
from vsm_actors.core.model.events import LedgerEvent
from vsm_actors.core.model.variants import Other
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import EventQuery, open_ledger
from vsm_actors.ledger._rows import storable_parts
from vsm_actors.system import Organization, make_directive

BAD = "bad \ud800 text"


def test_text_that_cannot_be_stored_is_refused_before_it_is_sent(tmp_path, genomes_dir):
    config = RuntimeConfig(ledger_url=str(tmp_path / "l.sqlite"))
    with Organization.start(load_genome(genomes_dir / "single_coder.yaml"), config) as org:
        with pytest.raises(ValueError, match="directive body is not valid UTF-8"):
            org.submit(make_directive(BAD, title="fine title"))
        with pytest.raises(ValueError, match="directive metadata 'team' is not valid UTF-8"):
            org.submit(make_directive("ok", metadata={"team": BAD}))
        assert org.run("Still fine").ok


@pytest.mark.parametrize("writer", ["inline", "process"])
def test_a_value_that_reaches_the_ledger_anyway_costs_only_its_own_record(tmp_path, genomes_dir, writer):
    path = str(tmp_path / "l.sqlite")
    config = RuntimeConfig(ledger_url=path, ledger_writer=writer)
    with Organization.start(load_genome(genomes_dir / "single_coder.yaml"), config) as org:
        # bypass the edge check, as a buggy client or a provider's output would
        good = [make_directive(f"Good {n}") for n in range(3)]
        bad = make_directive("x")
        bad = type(bad)(id=bad.id, origin="user", title="bad", body=BAD, metadata={})
        items = [*good[:2], bad, good[2]]
        for item in items:
            org.asys.tell(org.root or org.supervisor, SubmitDirective(directive=item))
        dones = org.wait(items)
    assert [d.ok for d in dones] == [True, True, False, True]
    with open_ledger(path) as ledger:
        events = list(ledger.events(EventQuery()))
    rejected = [e for e in events if e.storage_key == "other:ledger_record_rejected"]
    assert rejected and all("surrogates not allowed" in e.payload["reason"] for e in rejected)
    done_ids = {e.directive_id for e in events if e.storage_key == "trace_written"}
    assert {d.id for d in good} <= done_ids  # the good directives' work is stored


def test_storable_parts_sets_aside_exactly_what_cannot_be_stored():
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    events = [LedgerEvent(id=f"e{n}", kind=Other("x"), created_at=at, payload={"text": text})
              for n, text in enumerate(["ok", BAD, "fine", float("nan")])]
    good, traces, bad = storable_parts(events, [])
    assert [e.id for e in good] == ["e0", "e2"] and traces == []
    assert [(what, record_id) for what, record_id, _ in bad] == [("event", "e1"), ("event", "e3")]


def test_directive_sizes_are_bounded_with_a_clear_error(tmp_path, genomes_dir):
    from vsm_actors.system import check_storable
    small = RuntimeConfig(max_directive_bytes=100, max_metadata_entries=2, max_metadata_value_bytes=10)
    with pytest.raises(ValueError, match="directive is 201 bytes; the limit is 100"):
        check_storable(make_directive("x" * 200, title="t"), small)
    with pytest.raises(ValueError, match="metadata has 3 entries; the limit is 2"):
        check_storable(make_directive("x", metadata={"a": "1", "b": "2", "c": "3"}), small)
    with pytest.raises(ValueError, match="metadata 'team' is 15 bytes; the limit is 10"):
        check_storable(make_directive("x", metadata={"team": "x" * 11}), small)
    big = tmp_path / "big.txt"
    big.write_text("Add " + "x" * 1_100_000 + "\n")
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "vsm_actors", "run", str(genomes_dir / "single_coder.yaml"),
                           "--directives", str(big), "--ledger", str(tmp_path / "l.sqlite")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "the limit is 1000000" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "l.sqlite").exists()  # refused before anything started
