"""CommandProvider against real child processes: stdin prompt, templating, limits, timeouts, secrets."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from vsm_actors.core.model.node import ModelSpec
from vsm_actors.providers import (
    CommandProvider,
    MissingConfig,
    ProviderConfigError,
    ProviderRequestError,
    make_provider,
    render_prompt,
)

from .conftest import is_running, make_request, write_script

REPORT_SCRIPT = r'''
import json, os, sys
prompt = sys.stdin.read()
json.dump({"argv": sys.argv[1:], "stdin": prompt, "cwd": os.getcwd()}, sys.stdout)
'''

SLEEPER = r'''
import os, signal, subprocess, sys, time
if "ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(sys.argv[1], "w") as fh:
    fh.write(f"{os.getpid()} {grandchild.pid}")
sys.stderr.write("started sleeping\n"); sys.stderr.flush()
time.sleep(60)
'''


def _wait_until_gone(pids: list[int], limit: float = 5.0) -> list[int]:
    """Return the pids still running after at most `limit` seconds (killed processes die async)."""
    deadline = time.monotonic() + limit
    while (alive := [p for p in pids if is_running(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


def test_prompt_goes_to_stdin_and_placeholders_fill_the_argv(workspace: Path, tmp_path: Path) -> None:
    """The child gets the reference prompt layout on stdin; only known placeholders are replaced."""
    script = write_script(tmp_path, "report.py", REPORT_SCRIPT)
    provider = CommandProvider(
        argv=[sys.executable, str(script), "--ws={workspace}", "{node_id}", "{task_id}", "{model}",
              "{unknown}", '{"json": 1}', "$(touch pwned)"],
        workspace=str(workspace),
    )
    request = make_request(task_id="t-42", node_id="coder", model=ModelSpec(model="gpt-x"), zeta="last", alpha="first")
    seen = json.loads(provider.complete(request).output_text)
    assert seen["argv"] == [f"--ws={workspace}", "coder", "t-42", "gpt-x", "{unknown}", '{"json": 1}', "$(touch pwned)"]
    assert seen["cwd"] == str(workspace)
    assert seen["stdin"] == render_prompt(request)
    assert seen["stdin"] == (
        f"{request.instructions}\n\n--- TASK INPUT ---\n{request.input}\n\n--- HARNESS METADATA ---\n"
        "alpha: first\nnode_id: coder\nnode_name: Coder\ntask_id: t-42\nzeta: last\n")
    assert not list(workspace.glob("pwned")), "argv must never pass through a shell"


def test_prompt_has_no_metadata_section_without_metadata() -> None:
    """An empty metadata map leaves the metadata section out."""
    request = make_request()
    bare = type(request)(model=request.model, instructions="I", input="X", metadata={})
    assert render_prompt(bare) == "I\n\n--- TASK INPUT ---\nX"


def test_workspace_template_selects_a_directory_per_node(tmp_path: Path) -> None:
    """The workspace may use {node_id}, giving each leaf its own checkout."""
    (tmp_path / "coder").mkdir()
    script = write_script(tmp_path, "report.py", REPORT_SCRIPT)
    provider = CommandProvider(argv=[sys.executable, str(script)], workspace=str(tmp_path / "{node_id}"))
    assert json.loads(provider.complete(make_request(node_id="coder")).output_text)["cwd"] == str(tmp_path / "coder")
    with pytest.raises(MissingConfig, match="workspace directory does not exist"):
        provider.complete(make_request(node_id="reviewer"))


def test_timeout_kills_the_whole_process_group(workspace: Path, tmp_path: Path) -> None:
    """A child that outlives the limit is killed with its own children; the error names the limit."""
    script = write_script(tmp_path, "sleeper.py", SLEEPER)
    pid_file = tmp_path / "pids"
    provider = CommandProvider(argv=[sys.executable, str(script), str(pid_file)], workspace=str(workspace),
                               timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(ProviderRequestError) as caught:
        provider.complete(make_request())
    assert time.monotonic() - started < 5.0
    message = str(caught.value)
    assert message.startswith("provider request failed: command timed out after 0.5s; process group killed")
    assert "started sleeping" in message
    pids = [int(p) for p in pid_file.read_text().split()]
    assert _wait_until_gone(pids) == []


def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored(workspace: Path, tmp_path: Path) -> None:
    """A child ignoring SIGTERM is SIGKILLed after the grace period."""
    script = write_script(tmp_path, "sleeper.py", SLEEPER)
    pid_file = tmp_path / "pids"
    provider = CommandProvider(argv=[sys.executable, str(script), str(pid_file), "ignore-term"],
                               workspace=str(workspace), timeout_seconds=0.5, kill_grace_seconds=0.2)
    with pytest.raises(ProviderRequestError, match="timed out after 0.5s"):
        provider.complete(make_request())
    assert _wait_until_gone([int(p) for p in pid_file.read_text().split()]) == []


def test_background_leftovers_are_swept_after_a_normal_exit(workspace: Path, tmp_path: Path) -> None:
    """A process the command leaves running in its group is killed when the command returns."""
    script = write_script(tmp_path, "forker.py", r'''
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(child.pid)
''')
    provider = CommandProvider(argv=[sys.executable, str(script)], workspace=str(workspace), timeout_seconds=10)
    leftover = int(provider.complete(make_request()).output_text)
    assert _wait_until_gone([leftover]) == []


def test_nonzero_exit_reports_status_and_stderr_tail(workspace: Path, tmp_path: Path) -> None:
    """Exit code != 0 is a ProviderRequestError with the status and the end of stderr."""
    script = write_script(tmp_path, "fail.py", r'''
import sys
sys.stderr.write("x" * 100_000 + "\nthe real error\n")
sys.exit(3)
''')
    provider = CommandProvider(argv=[sys.executable, str(script)], workspace=str(workspace))
    with pytest.raises(ProviderRequestError) as caught:
        provider.complete(make_request())
    message = str(caught.value)
    assert message.startswith("provider request failed: command failed; status=exit status: 3; stderr_tail=")
    assert message.endswith("the real error\n")
    assert len(message) < 2200


def test_killed_by_signal_is_reported_as_a_signal(workspace: Path, tmp_path: Path) -> None:
    """A child dying of a signal reports it the way the reference words exit statuses."""
    script = write_script(tmp_path, "die.py", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    provider = CommandProvider(argv=[sys.executable, str(script)], workspace=str(workspace))
    with pytest.raises(ProviderRequestError, match=r"status=signal: 9 \(SIGKILL\)"):
        provider.complete(make_request())


def test_stdout_capture_is_bounded(workspace: Path, tmp_path: Path) -> None:
    """Output past the cap is drained (the child never blocks) and dropped, and flagged in raw."""
    script = write_script(tmp_path, "loud.py", "import sys\nsys.stdout.write('y' * 2_000_000)\n")
    provider = CommandProvider(argv=[sys.executable, str(script)], workspace=str(workspace), stdout_limit_bytes=1000)
    response = provider.complete(make_request())
    assert response.output_text == "y" * 1000
    assert response.raw["stdout_truncated"] is True
    assert response.raw["exit_status"] == 0


def test_child_that_ignores_stdin_still_succeeds(workspace: Path) -> None:
    """A large prompt to a child that never reads stdin is not an error (only the exit status counts)."""
    provider = CommandProvider(argv=[sys.executable, "-c", "print('ignored stdin')"], workspace=str(workspace))
    request = make_request()
    big = type(request)(model=request.model, instructions="I" * 1_000_000, input="x", metadata={})
    assert provider.complete(big).output_text == "ignored stdin"


def test_spawn_failure_is_a_request_error(workspace: Path) -> None:
    """A missing program is reported as a spawn failure, not an OSError."""
    provider = CommandProvider(argv=["/nonexistent/agent-cli", "-"], workspace=str(workspace))
    with pytest.raises(ProviderRequestError, match="^provider request failed: failed to spawn command: "):
        provider.complete(make_request())


@pytest.mark.parametrize("options", [{"argv": []}, {"argv": [""]}, {"argv": "codex exec -"},
                                     {"argv": ["x"], "timeout_seconds": 0}])
def test_bad_configuration_is_rejected_at_build_time(options: dict) -> None:
    """Empty argv, a shell-style string, or a non-positive timeout fail when the provider is built."""
    with pytest.raises(ProviderConfigError):
        make_provider("command", **options)


SECRET = "sk-test-SECRET-value-0123456789"
LEAKER = r'''
import os, sys
secret = os.environ["MY_AGENT_API_KEY"]
with open("received-secret", "w") as fh:
    fh.write(secret)
print("output mentions", secret)
sys.stderr.write("stderr mentions " + secret + "\n")
sys.exit(int(sys.argv[1]))
'''


@pytest.mark.parametrize("exit_code", [0, 1])
def test_secrets_reach_the_child_but_never_come_back(workspace: Path, tmp_path: Path, exit_code: int) -> None:
    """secret_env values are in the child's environment, and absent from repr, output, raw and errors."""
    script = write_script(tmp_path, "leaker.py", LEAKER)
    provider = CommandProvider(argv=[sys.executable, str(script), str(exit_code)], workspace=str(workspace),
                               secret_env={"MY_AGENT_API_KEY": SECRET})
    assert SECRET not in repr(provider)
    if exit_code:
        with pytest.raises(ProviderRequestError) as caught:
            provider.complete(make_request())
        assert SECRET not in str(caught.value) and "[REDACTED]" in str(caught.value)
    else:
        response = provider.complete(make_request())
        assert response.output_text == "output mentions [REDACTED]"
        assert SECRET not in json.dumps(response.raw)
    assert (workspace / "received-secret").read_text() == SECRET


@pytest.mark.parametrize("passing", [{"pass_env": ["SOME_SERVICE_*"]}, {"inherit_env": True}])
def test_passed_secret_looking_variables_are_redacted(workspace: Path, monkeypatch: pytest.MonkeyPatch,
                                                      passing: dict) -> None:
    """A key the child gets from our own environment (…_API_KEY), named by pass_env or with the whole
    environment inherited, is scrubbed from the output too."""
    monkeypatch.setenv("SOME_SERVICE_API_KEY", SECRET)
    provider = CommandProvider(argv=[sys.executable, "-c", "import os; print(os.environ['SOME_SERVICE_API_KEY'])"],
                               workspace=str(workspace), **passing)
    assert provider.complete(make_request()).output_text == "[REDACTED]"
