"""Output redaction covers every value the organization was given as a secret, short ones included
(issue 11 point 4): `secret_env` values and provider options marked secret of 3 characters or
more, the values of secret-looking variables the child gets, and URL passwords of any length.

The end-to-end cases run a real child that echoes planted secrets on stdout and stderr, and check
the response text, its raw data and the error messages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from test_command_env import request
from vsm_actors.providers import CodexConfig, CodexProvider, CommandProvider, ProviderRequestError
from vsm_actors.providers.base import MIN_SECRET_LEN, REDACTED, looks_secret, redact, secret_values_from_env
from vsm_actors.providers.options import (
    SECRET_OPTIONS, OptionError, masked_options, parse_option, secret_option_values,
)

PLANTED = {
    "DATABASE_URL": "postgresql://app:pw@db.internal:5432/prod",  # a 2-character password: masked as a URL's
    "MYAPP_DB_PASS": "hunter2-planted",
    "SENTRY_DSN": "https://k3y9f00d@o1.ingest.sentry.io/42",
    "GH_TOKEN": "ab12",
}
SECRET_ENV = {"AGENT_SECRET": "q7z"}  # 3 characters: still a secret
ECHO = """\
import os, sys
names = sys.argv[2:]
values = [os.environ[n] for n in names]
line = " | ".join(f"{n}={v}" for n, v in zip(names, values))
print("out:", line)
print("err:", line, file=sys.stderr)
if sys.argv[1] == "hang":
    sys.stderr.flush()
    import time
    time.sleep(60)
sys.exit(int(sys.argv[1]) if sys.argv[1] != "hang" else 0)
"""


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    return PLANTED


def leaks(text: str) -> list[str]:
    values = [*PLANTED.values(), *SECRET_ENV.values(), "hunter2-planted", "k3y9f00d", "ab12", "q7z", ":pw@"]
    return [value for value in values if value in text]


def echoing(tmp_path: Path, mode: str, **options: object) -> CommandProvider:
    script = tmp_path / "echo.py"
    script.write_text(ECHO)
    return CommandProvider(argv=[sys.executable, str(script), mode, *PLANTED, *SECRET_ENV], workspace=str(tmp_path),
                           pass_env=list(PLANTED), secret_env=SECRET_ENV, **options)


def test_passed_secrets_never_come_back_in_the_response(tmp_path: Path, planted: dict[str, str]) -> None:
    response = echoing(tmp_path, "0").complete(request())
    everything = response.output_text + json.dumps(response.raw)
    assert leaks(everything) == []
    assert response.output_text.count(REDACTED) == 5
    assert "postgresql://app:[REDACTED]@db.internal:5432/prod" in response.output_text  # the URL stays readable


def test_passed_secrets_never_come_back_in_an_error(tmp_path: Path, planted: dict[str, str]) -> None:
    with pytest.raises(ProviderRequestError) as failed:
        echoing(tmp_path, "3").complete(request())
    assert "exit status: 3" in str(failed.value) and leaks(str(failed.value)) == []
    assert REDACTED in str(failed.value)


def test_passed_secrets_never_come_back_in_a_timeout(tmp_path: Path, planted: dict[str, str]) -> None:
    with pytest.raises(ProviderRequestError, match="timed out") as failed:
        echoing(tmp_path, "hang", timeout_seconds=1.5, kill_grace_seconds=0.2).complete(request())
    assert leaks(str(failed.value)) == []


def test_an_inherited_environment_is_redacted_as_well(tmp_path: Path, planted: dict[str, str]) -> None:
    script = tmp_path / "echo.py"
    script.write_text(ECHO)
    provider = CommandProvider(argv=[sys.executable, str(script), "0", *PLANTED], workspace=str(tmp_path),
                               inherit_env=True)
    assert leaks(provider.complete(request()).output_text) == []


def test_codex_redacts_its_short_api_key_and_the_openai_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-z9")  # short, as a test key may be
    fake = tmp_path / "codex"
    fake.write_text(f"#!{sys.executable}\nimport os, sys\nsys.stdin.read()\n"
                    "print('keys', os.environ['CODEX_API_KEY'], os.environ['OPENAI_API_KEY'])\n"
                    "print('stderr', os.environ['CODEX_API_KEY'], file=sys.stderr)\nsys.exit(1)\n")
    fake.chmod(0o755)
    provider = CodexProvider(CodexConfig(binary=str(fake), workspace_root=str(tmp_path), json_events=False,
                                         codex_api_key="c0x"))
    with pytest.raises(ProviderRequestError) as failed:
        provider.complete(request())
    assert "c0x" not in str(failed.value) and "sk-z9" not in str(failed.value)
    assert "stderr [REDACTED]" in str(failed.value)


# -- the rules, one by one -----------------------------------------------------------------------------


def test_short_secrets_are_redacted_down_to_three_characters() -> None:
    assert MIN_SECRET_LEN == 3
    assert redact("token ab1 here", ["ab1"]) == f"token {REDACTED} here"
    # the documented guard: 1-2 characters would erase ordinary letters from every answer
    assert redact("a b xy", ["a", "xy"]) == "a b xy"
    assert redact("", ["abc"]) == "" and redact("abc", [""]) == "abc"


def test_longer_secrets_win_over_their_own_parts() -> None:
    assert redact("key=abcdef", ["abc", "abcdef"]) == f"key={REDACTED}"


def test_url_passwords_are_masked_whatever_their_length() -> None:
    assert redact("postgresql://u:pw@h/db and amqp://guest:g@mq:5672/", []) == \
        f"postgresql://u:{REDACTED}@h/db and amqp://guest:{REDACTED}@mq:5672/"
    assert redact("http://host:8080/path ssh://git@github.com", []) == "http://host:8080/path ssh://git@github.com"


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "GH_TOKEN", "AWS_SECRET_ACCESS_KEY", "MYAPP_DB_PASS",
                                  "DB_PASSWORD", "SENTRY_DSN", "GOOGLE_CREDENTIALS", "NPM_AUTH", "BASIC_AUTH_USER"])
def test_secret_looking_names(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize("name", ["PATH", "HOME", "GIT_AUTHOR_NAME", "LANG", "DATABASE_URL"])
def test_names_that_are_not_secret(name: str) -> None:
    assert not looks_secret(name)


def test_secrets_of_an_environment() -> None:
    env = {**PLANTED, "HAS_TOKEN": "yes", "GIT_AUTHOR_NAME": "Ada", "PATH": "/bin",
           "ENCODED_URL": "https://u:p%40ss@h/x"}
    found = set(secret_values_from_env(env))
    assert found == {"pw", "hunter2-planted", PLANTED["SENTRY_DSN"], "ab12", "p%40ss", "p@ss"}


def test_secret_options_are_declared_once_and_never_echoed() -> None:
    assert SECRET_OPTIONS["command"] == {"secret_env"} and SECRET_OPTIONS["codex"] == {"codex_api_key"}
    assert SECRET_OPTIONS["openai"] == {"api_key"}
    with pytest.raises(OptionError) as bad:
        parse_option("command", "secret_env", '{"K": "s3cr3t-value"')
    assert "s3cr3t-value" not in str(bad.value) and "not shown" in str(bad.value)
    with pytest.raises(OptionError, match="got '{\"K\": 1}'"):  # a value that is not secret is quoted, as before
        parse_option("command", "env", '{"K": 1}')
    options = {"argv": ["agent"], "secret_env": {"K": "abc"}, "env": {"M": "ci"}}
    assert masked_options("command", options) == {"argv": ["agent"], "secret_env": {"K": "***"}, "env": {"M": "ci"}}
    assert masked_options("codex", {"codex_api_key": "x", "model": "m"}) == {"codex_api_key": "***", "model": "m"}
    assert secret_option_values("command", options) == ("abc",)
    assert secret_option_values("openai", {"api_key": "sk-1"}) == ("sk-1",)
