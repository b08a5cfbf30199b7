"""Secrets stay contained: a password in the ledger URL and provider options given to `vsm up`
appear in no output, no state file, no log of ours and no process's command line (issue 11 point 4)."""

from __future__ import annotations

import json
import os
import stat
import uuid

import pytest

from vsm_actors.ledger import describe_ledger
from vsm_actors.ledger._database import mask_url

from test_live_cli import cmdline, live_dir, organization_pids, vsm  # noqa: F401

SECRET = "pw-planted-7f3a"


def test_vsm_up_keeps_the_ledger_password_and_provider_options_out_of_sight(live_dir, genomes_dir):  # noqa: F811
    schema = f"vsm_secret_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:5432/test?schema={schema}"
    up = vsm(live_dir, "up", str(genomes_dir / "single_coder.yaml"), "--ledger", url,
             "--provider-option", f"prefix=opt-{SECRET}")
    try:
        assert SECRET not in up.stdout + up.stderr and "postgres@127.0.0.1:5432/test" in up.stdout
        sent = vsm(live_dir, "send", "Add a health check", "-o", "json")
        assert json.loads(sent.stdout)[0]["ok"]
        state = live_dir / ".vsm" / "organization.json"
        assert SECRET not in state.read_text()
        assert stat.S_IMODE(state.stat().st_mode) == 0o600
        assert stat.S_IMODE((live_dir / ".vsm").stat().st_mode) & 0o077 == 0
        pids = organization_pids(live_dir)
        assert len(pids) >= 4
        for pid in pids:
            assert SECRET not in cmdline(pid), f"process {pid} shows the secret: {cmdline(pid)!r}"
        status = vsm(live_dir, "status")
        assert SECRET not in status.stdout + status.stderr
    finally:
        vsm(live_dir, "down", check=False)
        import peewee
        db = peewee.PostgresqlDatabase("test", user="postgres", host="127.0.0.1", port=5432)
        with db:
            db.execute_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    for name in os.listdir(live_dir / ".vsm"):
        text = (live_dir / ".vsm" / name).read_text(errors="replace")
        assert SECRET not in text, name


@pytest.mark.parametrize("url, shown", [
    ("postgresql://app:hunter2@db:5432/prod", "postgresql://app@db:5432/prod"),
    ("postgres://app:x@h/d?schema=s", "postgresql://app@h:5432/d?schema=s"),
    ("runs/ledger.sqlite", "sqlite:runs/ledger.sqlite"),
    ("memory://", "memory://"),
])
def test_ledger_locations_are_described_without_their_password(url, shown):
    assert describe_ledger(url) == shown


def test_bad_urls_are_reported_without_their_password():
    from vsm_actors.ledger import LedgerError, open_ledger
    assert mask_url("postgresql://app:hunter2@db/x?bogus=1") == "postgresql://app:***@db/x?bogus=1"
    with pytest.raises(LedgerError) as info:
        open_ledger("postgresql://app:hunter2@db/x?bogus=1")
    assert "hunter2" not in str(info.value) and "***" in str(info.value)
