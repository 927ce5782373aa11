"""The ``workflow run`` command for given Works, its errors and exit statuses (no buckets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from workflow.cli.run import run

WORK = {"pipeline": "p", "site": "local", "user": "u", "command": ["echo", "from the work"]}


@pytest.fixture
def summary(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the runner writes its termination summary in these tests."""
    path = tmp_path / "termination-log"
    monkeypatch.setenv("WORKFLOW_TERMINATION_LOG", str(path))
    return path


def invoke(*args: str, **options):
    return CliRunner().invoke(run, list(args), catch_exceptions=False, **options)


def test_a_work_file_is_run_and_its_summary_written(summary: Path, tmp_path: Path) -> None:
    path = tmp_path / "work.yaml"
    path.write_text(yaml.safe_dump(WORK))
    result = invoke("--work", str(path))
    assert result.exit_code == 0, result.output
    written = json.loads(summary.read_text())
    assert (written["status"], written["reason"], written["attempt"]) == ("success", "Completed", 1)
    assert written["results"]["stdout"] == "from the work\n"
    assert "succeeded" in result.output


def test_a_work_on_standard_input_is_run(summary: Path) -> None:
    result = invoke("--work", "-", "--json", input=json.dumps(WORK))
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["status"] == "success"


def test_a_work_in_a_named_environment_variable_is_run(
    summary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_WORK", json.dumps({**WORK, "attempt": 2}))
    result = invoke("--work-env", "MY_WORK")
    assert result.exit_code == 0, result.output
    assert json.loads(summary.read_text())["attempt"] == 2


def test_workflow_work_is_read_when_nothing_else_is_given(
    summary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKFLOW_WORK", json.dumps(WORK))
    assert invoke().exit_code == 0


def test_a_failing_work_exits_1_and_says_why(summary: Path) -> None:
    work = {**WORK, "command": ["sh", "-c", "echo broken pipe >&2; exit 5"]}
    result = invoke("--work", "-", input=json.dumps(work))
    assert result.exit_code == 1
    assert "failed (Error)" in result.output and "broken pipe" in result.output
    assert json.loads(summary.read_text())["exitCode"] == 5


def test_the_timeout_option_replaces_the_works_timeout(summary: Path) -> None:
    work = {**WORK, "command": ["sleep", "30"]}
    result = invoke("--work", "-", "--timeout", "1", "--grace", "1", input=json.dumps(work))
    assert result.exit_code == 1
    assert json.loads(summary.read_text())["reason"] == "DeadlineExceeded"


def test_an_invalid_work_exits_2_with_a_sentence_and_a_summary(summary: Path) -> None:
    result = invoke("--work", "-", input=json.dumps({**WORK, "priority": 9}))
    assert result.exit_code == 2
    assert "the work in standard input is invalid: priority:" in result.output
    assert json.loads(summary.read_text())["reason"] == "InvalidWork"


def test_an_empty_work_variable_exits_2(summary: Path) -> None:
    result = invoke("--work-env", "NOT_SET_ANYWHERE")
    assert result.exit_code == 2 and "NOT_SET_ANYWHERE is not set" in result.output


def test_nothing_to_run_is_a_usage_error(summary: Path) -> None:
    result = invoke()
    assert result.exit_code == 2 and "nothing to run" in result.output


def test_pipelines_and_a_work_together_are_a_usage_error(summary: Path) -> None:
    result = invoke("p", "--work", "-", input="{}")
    assert result.exit_code == 2 and "not both" in result.output


def test_withdrawing_without_a_buckets_address_exits_2_naming_the_problem(
    summary: Path, workspace: Path
) -> None:
    workspace.write_text("workspace: x\nsites: [local]\n")
    result = invoke("p")
    assert result.exit_code == 2
    assert "cannot reach buckets" in result.output and "names no buckets base URL" in result.output


def test_a_given_work_with_an_id_still_runs_when_buckets_is_not_configured(
    summary: Path, workspace: Path
) -> None:
    workspace.write_text("workspace: x\nsites: [local]\n")
    result = invoke("--work", "-", input=json.dumps({**WORK, "id": "w1"}))
    assert result.exit_code == 0
    assert "not recorded there" in result.output
    assert json.loads(summary.read_text())["recorded"] is None
