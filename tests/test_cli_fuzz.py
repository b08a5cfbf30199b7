"""Never a traceback on user input (issue 10 point 6): arbitrary bytes as genome and directive
files, and arbitrary option values, always end in a message and an exit code (0, 1 or 2)."""

from __future__ import annotations

import os
import traceback

from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings, strategies as st

from vsm_actors.cli import main

GENOMES = os.path.join(os.path.dirname(__file__), "..", "genomes")
text_values = st.one_of(st.text(max_size=40), st.sampled_from(["", "-1", "0", "1e999", "nan", "=", "k=", "=v",
                                                                 "a=b=c", "\x00", "é", "\udcff"]))


def invoke(args, tmp_path):
    result = CliRunner().invoke(main, args, catch_exceptions=True, env={"VSM_LEDGER": str(tmp_path / "l.sqlite")})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("".join(traceback.format_exception(result.exception)))
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    return result


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_as_a_genome_file(tmp_path, data):
    path = tmp_path / "g.yaml"
    path.write_bytes(data)
    for command in (["genome", "validate", str(path)], ["genome", "show", str(path)]):
        invoke(command, tmp_path)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_as_a_directives_file(tmp_path, data):
    path = tmp_path / "work.txt"
    path.write_bytes(data)
    invoke(["run", os.path.join(GENOMES, "single_coder.yaml"), "--fresh", "--directives", str(path), "-q",
            "--ledger", str(tmp_path / "run.sqlite")], tmp_path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(["--timeout", "--meta", "--risk", "--class", "--capability", "--provider-option",
                               "--directive", "--provider", "--base"]), value=text_values)
@example(option="--timeout", value="1e999")
@example(option="--timeout", value="nan")
@example(option="--directive", value="")
def test_arbitrary_option_values(tmp_path, option, value):
    invoke(["run", os.path.join(GENOMES, "single_coder.yaml"), "--fresh", "-q", "--ledger",
            str(tmp_path / "opt.sqlite"), "--directive", "Add a check", option, value], tmp_path)
