"""The recency rule read through SQL (`commands/ledger_id_order.py`) on SQLite and PostgreSQL
ledgers: it names what the in-memory reference (`ScannedOrder`) names, a view's window is
computed over the same ids, and every id `vsm ledger tree` prints resolves to exactly its
directive, also when older directives contain the fragment printed."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vsm_actors.commands import ledger_id_order, ledger_ids
from vsm_actors.commands.ledger_id_order import EventColumnOrder, ScannedOrder
from vsm_actors.core.model.events import LedgerEvent, LedgerEventKind
from vsm_actors.core.model.variants import Other
from vsm_actors.ledger import open_ledger
from vsm_actors.views.short_ids import matching

from .conftest import vsm
from .test_short_ids_recency import NEAR, RuntimeIds, decoy, ledger_values

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def small_windows(monkeypatch):
    monkeypatch.setattr(ledger_id_order, "NEAR_EVENTS", NEAR)
    monkeypatch.setattr(ledger_id_order, "SAMPLE", 8)
    monkeypatch.setattr(ledger_id_order, "LOOKBACK", 4 * NEAR)  # values far back take the index path


@pytest.fixture(params=["sqlite", "postgres"])
def new_url(request, tmp_path, postgres_prefix, postgres_base_url):
    """Makes a fresh, empty ledger location per call (a hypothesis example each)."""
    def make() -> str:
        name = uuid.uuid4().hex[:8]
        if request.param == "sqlite":
            return str(tmp_path / f"{name}.sqlite")
        return f"{postgres_base_url}?schema={postgres_prefix}_{name}"  # dropped with the session's
    return make


def write(url: str, directives: list[str | None], tasks: list[str | None]) -> None:
    """One event per place: a directive's first names it accepted (so `tree` lists it)."""
    seen: set[str] = set()
    events = []
    for n, (directive, task) in enumerate(zip(directives, tasks)):
        first = directive is not None and directive not in seen
        seen.add(directive)
        events.append(LedgerEvent(
            id=str(uuid.UUID(int=n + 1)), kind=LedgerEventKind.DirectiveAccepted if first else Other("probe"),
            created_at=T0 + timedelta(milliseconds=n), node_id="root", directive_id=directive, task_id=task,
            payload={"title": f"directive {n}"} if first else {}))
    with open_ledger(url) as ledger:
        ledger.write_batch(events, [])


def needles(rng: random.Random, ids: list[str]) -> list[str]:
    out = ["7", "zz-none", ids[0][-12:], ids[-1]]
    for value in rng.sample(ids, min(len(ids), 12)):
        start = rng.randrange(0, len(value) - 6)
        out.append(value[start:start + rng.randint(6, 12)].upper() if rng.random() < 0.2 else
                   value[start:start + rng.randint(6, 12)])
    return out


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ledger_values_=st.builds(ledger_values, st.integers(1, 3), st.integers(5, 60), st.floats(0, 0.8),
                                st.integers(0, 10_000)),
       seed=st.integers(0, 10_000))
def test_sql_orders_name_what_the_reference_names(new_url, ledger_values_, seed):
    directives = ledger_values_
    tasks = ledger_values(2, len(directives), 0.3, seed)[:len(directives)]
    tasks += [None] * (len(directives) - len(tasks))
    url = new_url()
    write(url, directives, tasks)
    rng = random.Random(seed)
    with open_ledger(url, read_only=True) as ledger:
        for column, values in (("directive_id", directives), ("task_id", tasks)):
            sql, reference = EventColumnOrder(ledger, column), ScannedOrder(values)
            recorded = list(dict.fromkeys(v for v in values if v))
            if not recorded:
                continue
            for needle in needles(rng, recorded):
                assert sorted(ledger_ids.by_recency(sql, needle)) == sorted(ledger_ids.by_recency(reference, needle))
            shown = rng.sample(recorded, min(len(recorded), 5))
            (ids, width), (want, want_width) = (ledger_ids.basis_over(o, shown) for o in (sql, reference))
            assert set(ids) == set(want) and width == want_width


def old_decoys_then_newest(rng: random.Random) -> tuple[list[str | None], list[str]]:
    """Decoys of the newest directives (each holds all but one of a newest id's windows), the
    near window's worth of other events, then the newest directives."""
    made = RuntimeIds(rng)
    newest = [made(0x01A2532C0000 + n // 3) for n in range(30)]
    old = [d for v in newest for d in (decoy(rng, v) for _ in range(3)) if d not in newest]
    return [*old, *([None] * NEAR), *newest], newest


def test_every_id_tree_prints_resolves_to_exactly_its_directive(new_url, monkeypatch):
    monkeypatch.setattr(ledger_id_order, "SAMPLE", 0)  # sampled decoys would widen the window past them
    url = new_url()
    values, newest = old_decoys_then_newest(random.Random(9))
    write(url, values, [None] * len(values))
    text = vsm("ledger", "tree", "--ledger", url, "--limit", "10")
    assert text.exit_code == 0, text.output
    trees = json.loads(vsm("ledger", "tree", "--ledger", url, "--limit", "10", "-o", "json").stdout)
    headers = [ln.split()[1] for ln in text.stdout.splitlines() if ln.startswith("directive ")]
    assert [t["directive_id"] for t in trees] == newest[-10:] and len(headers) == 10
    recorded = list(dict.fromkeys(v for v in values if v))
    ambiguous = 0
    with open_ledger(url, read_only=True) as ledger:
        for piece, full in zip(headers, newest[-10:]):
            assert len(piece) < len(full) and ledger_ids.resolve(ledger, "directive", piece, url) == full
            ambiguous += len(matching(piece, recorded)) > 1
            only = json.loads(vsm("ledger", "tree", "--ledger", url, "--directive", piece, "-o", "json").stdout)
            assert [t["directive_id"] for t in only] == [full]
    assert ambiguous  # older directives held some of the printed fragments: recency told them apart


def test_a_value_several_recent_directives_contain_is_ambiguous(new_url):
    url = new_url()
    values, newest = old_decoys_then_newest(random.Random(4))
    write(url, values, [None] * len(values))
    result = vsm("ledger", "events", "--ledger", url, "--directive", newest[0][-12:])
    assert result.exit_code == 2 and "give more of the id" in result.stderr
    assert vsm("ledger", "tree", "--ledger", url, "--directive", "zz-none").exit_code == 2
    # an exact id, even one that other ids contain parts of
    exact = json.loads(vsm("ledger", "tree", "--ledger", url, "--directive", newest[3], "-o", "json").stdout)
    assert [t["directive_id"] for t in exact] == [newest[3]]
