"""A command provider's child gets an allowlisted environment (issue 11 point 4): a minimal base,
what `pass_env` names, and `env`/`secret_env`; never our whole environment unless `inherit_env`.

Every child here is a real process that prints (or writes to a file) the environment it got."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from vsm_actors.core.model.node import ModelSpec
from vsm_actors.providers import CodexConfig, CodexProvider, CommandProvider, ModelRequest, ProviderConfigError
from vsm_actors.providers.command import BASE_ENV
from vsm_actors.providers.options import OptionError, check_provider, parse_option

PLANTED = {
    "DATABASE_URL": "postgresql://app:pw-db-71c@db.internal:5432/prod",
    "MYAPP_DB_PASS": "hunter2-planted",
    "SENTRY_DSN": "https://k3y9f00d@o1.ingest.sentry.io/42",
    "GH_TOKEN": "ab12",
}
# the child writes its environment to a file: what it saw, unredacted, is what we check here
DUMP_ENV = "import os, json, sys; open(sys.argv[1], 'w').write(json.dumps(dict(os.environ)))"


def request() -> ModelRequest:
    return ModelRequest(model=ModelSpec(provider="test", model="unbound"), instructions="i", input="x",
                        metadata={"node_id": "coder", "task_id": "t-1"})


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_PLANTED", "C")  # LC_* belongs to the base
    monkeypatch.setenv("PLAIN_SETTING", "visible-only-when-asked")
    return PLANTED


def child_env(tmp_path: Path, **options: object) -> dict[str, str]:
    out = tmp_path / "env.json"
    provider = CommandProvider(argv=[sys.executable, "-c", DUMP_ENV, str(out)], workspace=str(tmp_path), **options)
    provider.complete(request())
    return json.loads(out.read_text())


def test_by_default_the_child_sees_only_the_base(tmp_path: Path, planted: dict[str, str]) -> None:
    seen = child_env(tmp_path)
    for name in planted:
        assert name not in seen
    assert not any(value in json.dumps(seen) for value in planted.values())
    assert "PLAIN_SETTING" not in seen
    assert seen["LC_PLANTED"] == "C" and "PATH" in seen
    assert set(seen) <= {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "TZ", "TMPDIR"} | {
        name for name in seen if name.startswith("LC_")}


def test_the_child_printing_its_environment_shows_no_planted_secret(tmp_path: Path, planted: dict[str, str]) -> None:
    """The brief's probe: `python -c 'print(json.dumps(dict(os.environ)))'` as the agent."""
    provider = CommandProvider(argv=[sys.executable, "-c", "import os,json;print(json.dumps(dict(os.environ)))"],
                               workspace=str(tmp_path))
    seen = json.loads(provider.complete(request()).output_text)
    assert not set(planted) & set(seen)


def test_pass_env_names_and_patterns_reach_the_child(tmp_path: Path, planted: dict[str, str]) -> None:
    seen = child_env(tmp_path, pass_env=["DATABASE_URL", "MYAPP_*", "SENTRY_DSN", "GH_TOKEN"])
    assert {name: seen[name] for name in planted} == planted
    assert "PLAIN_SETTING" not in seen


def test_env_and_secret_env_are_given_as_values(tmp_path: Path, planted: dict[str, str]) -> None:
    seen = child_env(tmp_path, env={"MODE": "ci"}, secret_env={"AGENT_KEY": "k-42"})
    assert seen["MODE"] == "ci" and seen["AGENT_KEY"] == "k-42"
    assert "DATABASE_URL" not in seen


def test_inherit_env_is_the_explicit_opt_in_to_everything(tmp_path: Path, planted: dict[str, str]) -> None:
    seen = child_env(tmp_path, inherit_env=True)
    assert {name: seen[name] for name in planted} == planted and seen["PLAIN_SETTING"] == "visible-only-when-asked"


def test_the_base_is_documented_and_minimal() -> None:
    assert set(BASE_ENV) == {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_*", "TZ", "TMPDIR"}
    assert CommandProvider(argv=["true"]).inherit_env is False


def test_the_codex_preset_passes_what_codex_reads_and_nothing_else(tmp_path: Path, planted: dict[str, str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted-openai-0001")
    monkeypatch.setenv("CODEX_HOME", str(tmp_path))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-planted-0002")
    out = tmp_path / "env.json"
    fake = tmp_path / "codex"
    fake.write_text(f"#!{sys.executable}\nimport os, json\n"
                    f"open({str(out)!r}, 'w').write(json.dumps(dict(os.environ)))\n")
    fake.chmod(0o755)
    provider = CodexProvider(CodexConfig(binary=str(fake), workspace_root=str(tmp_path), json_events=False,
                                         codex_api_key="ck-9"))
    provider.complete(request())
    seen = json.loads(out.read_text())
    assert seen["OPENAI_API_KEY"] == "sk-planted-openai-0001" and seen["CODEX_HOME"] == str(tmp_path)
    assert seen["CODEX_API_KEY"] == "ck-9" and seen["HTTPS_PROXY"] == "http://proxy.internal:3128"
    assert not set(planted) & set(seen) and "AZURE_OPENAI_API_KEY" not in seen
    # a key that codex's own config names (env_key) is passed by name
    extra = CodexProvider(CodexConfig(binary=str(fake), workspace_root=str(tmp_path), json_events=False,
                                      pass_env=["AZURE_OPENAI_API_KEY"]))
    extra.complete(request())
    assert json.loads(out.read_text())["AZURE_OPENAI_API_KEY"] == "az-planted-0002"


def test_pass_env_is_a_typed_validated_option(tmp_path: Path) -> None:
    assert parse_option("command", "pass_env", '["AWS_*", "GH_TOKEN", "LC_[AM]*"]') == ["AWS_*", "GH_TOKEN", "LC_[AM]*"]
    assert parse_option("codex", "pass_env", '["AZURE_OPENAI_API_KEY"]') == ["AZURE_OPENAI_API_KEY"]
    with pytest.raises(OptionError, match="must be a JSON list of strings"):
        parse_option("command", "pass_env", "AWS_*")
    with pytest.raises(OptionError, match="'A B' is not a variable name or glob pattern"):
        parse_option("command", "pass_env", '["A B"]')
    with pytest.raises(ProviderConfigError, match="not a variable name"):
        CommandProvider(argv=["true"], pass_env=["X=1"])
    with pytest.raises(OptionError, match="not a variable name"):  # a genome's options take the same check
        check_provider("command", {"argv": ["true"], "pass_env": ["$HOME"]})
