"""``workflow run`` against a real buckets server, on SQLite and on PostgreSQL.

Works are deposited through the client, withdrawn and run by the command, and
the record buckets keeps afterwards is checked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from workflow.cli.run import run
from workflow.definitions.work import Work
from workflow.http import Buckets

pytestmark = pytest.mark.integration


@pytest.fixture
def summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "termination-log"
    monkeypatch.setenv("WORKFLOW_TERMINATION_LOG", str(path))
    return path


def deposit(**fields) -> str:
    values = {"pipeline": "runner-it", "site": "local", "user": "tester", **fields}
    [work_id] = Work(**values).deposit(return_ids=True)
    return work_id


def invoke(*args: str, **options):
    return CliRunner().invoke(run, list(args), catch_exceptions=False, **options)


def test_a_deposited_function_is_withdrawn_run_and_recorded_as_success(
    buckets, buckets_workspace: Path, summary: Path
) -> None:
    work_id = deposit(function="workflow.examples.functions.mean", parameters={"values": [1, 2, 6]})
    result = invoke("runner-it", "--site", "local", "--lives", "1")
    assert result.exit_code == 0, result.output
    with Buckets(baseurl=buckets.url) as client:
        record = client.get(work_id)
    assert (record["status"], record["attempt"]) == ("success", 1)
    assert record["results"] == {"mean": 3.0, "stdev": 2.6457513110645907, "count": 3}
    assert record["start"] <= record["stop"]
    assert json.loads(summary.read_text())["id"] == work_id


def test_a_command_reporting_through_its_results_file_is_recorded(
    buckets, buckets_workspace: Path, summary: Path
) -> None:
    script = (
        'echo \'{"results": {"rows": 3}, "products": ["/d/x.csv"]}\' > "$WORKFLOW_RESULTS_PATH"'
    )
    work_id = deposit(command=["sh", "-c", script])
    assert invoke("runner-it", "--lives", "1").exit_code == 0
    with Buckets(baseurl=buckets.url) as client:
        record = client.get(work_id)
    assert (record["status"], record["results"], record["products"]) == (
        "success",
        {"rows": 3},
        ["/d/x.csv"],
    )


def test_a_work_over_its_timeout_is_recorded_as_failure(
    buckets, buckets_workspace: Path, summary: Path
) -> None:
    work_id = deposit(
        function="workflow.examples.functions.sleep", parameters={"seconds": 60}, timeout=1
    )
    started = time.monotonic()
    result = invoke("runner-it", "--lives", "1", "--grace", "1")
    assert result.exit_code == 1
    assert time.monotonic() - started < 20
    with Buckets(baseurl=buckets.url) as client:
        assert client.get(work_id)["status"] == "failure"
    assert json.loads(summary.read_text())["reason"] == "DeadlineExceeded"


def test_works_are_run_most_urgent_first_and_only_those_matching_the_filters(
    buckets, buckets_workspace: Path, summary: Path
) -> None:
    ids = {
        priority: deposit(command=["true"], priority=priority, tags=["mine"])
        for priority in (1, 5, 3)
    }
    other = deposit(command=["true"], priority=5, tags=["theirs"])
    result = invoke("runner-it", "--tag", "mine", "--lives", "4", "--sleep", "0", "--json")
    assert result.exit_code == 0, result.output
    ran = [json.loads(line)["id"] for line in result.stdout.splitlines() if line.startswith("{")]
    assert ran == [ids[5], ids[3], ids[1]]
    with Buckets(baseurl=buckets.url) as client:
        assert client.get(other)["status"] == "queued"


def test_a_given_work_is_recorded_under_its_id(
    buckets, buckets_workspace: Path, summary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work_id = deposit(command=["echo", "given"])
    with Buckets(baseurl=buckets.url) as client:
        document = client.get(work_id)
    monkeypatch.setenv("WORKFLOW_WORK", json.dumps({**document, "status": "running", "attempt": 1}))
    monkeypatch.setenv("WORKFLOW_HTTP_BASEURL", buckets.url)
    result = invoke("--work-env", "WORKFLOW_WORK")
    assert result.exit_code == 0, result.output
    with Buckets(baseurl=buckets.url) as client:
        record = client.get(work_id)
    assert (record["status"], record["attempt"], record["results"]["stdout"]) == (
        "success",
        1,
        "given\n",
    )


def test_an_empty_queue_is_not_an_error(buckets, buckets_workspace: Path, summary: Path) -> None:
    result = invoke("runner-it", "--lives", "2", "--sleep", "0")
    assert result.exit_code == 0
    assert "no queued work in runner-it" in result.output


def test_with_tokens_required_the_runner_uses_the_token_and_says_when_it_has_none(
    buckets_auth, workspace: Path, summary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fixtures.workspace import write_workspace

    write_workspace(workspace, buckets_auth.url)
    monkeypatch.setenv("WORKFLOW_HTTP_TOKEN", buckets_auth.token)
    work_id = deposit(command=["true"], token=buckets_auth.token)
    assert invoke("runner-it", "--lives", "1").exit_code == 0
    with Buckets(baseurl=buckets_auth.url, token=buckets_auth.token) as client:
        assert client.get(work_id)["status"] == "success"

    monkeypatch.delenv("WORKFLOW_HTTP_TOKEN")
    result = invoke("runner-it", "--lives", "1")
    assert result.exit_code == 1
    assert "401" in result.output


def test_sigterm_stops_the_running_work_and_records_it_as_interrupted(
    buckets_sqlite, workspace: Path, tmp_path: Path
) -> None:
    from fixtures.workspace import write_workspace

    write_workspace(workspace, buckets_sqlite.url)
    work_id = deposit(command=["sleep", "60"])
    log = tmp_path / "summary.json"
    environment = {**os.environ, "WORKFLOW_TERMINATION_LOG": str(log)}
    process = subprocess.Popen(
        [sys.executable, "-c", "from workflow.cli import main; main()", "run", "runner-it"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with Buckets(baseurl=buckets_sqlite.url) as client:
            deadline = time.monotonic() + 30
            while process.poll() is None and time.monotonic() < deadline:
                if client.get(work_id)["status"] == "running":
                    break
                time.sleep(0.1)
            assert process.poll() is None, process.communicate()[0].decode()
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
            record = client.get(work_id)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1, output.decode()
    assert record["status"] == "failure"
    assert json.loads(log.read_text())["reason"] == "Interrupted"
