"""Our buckets server, driven by the public ``workflow-core==1.12.3`` client.

The public client lives in a separate virtualenv (it imports as ``workflow``,
like our package), created once and cached across sessions. Each scenario of
``workflow_core_scenarios.py`` runs in that virtualenv against a real buckets
server (SQLite and PostgreSQL) and reports what it saw; the assertions are
here. Without the virtualenv the tests are skipped (``fixtures.skipping``: a
failure under CI).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).with_name("workflow_core_scenarios.py")


@pytest.fixture
def scenario(
    workflow_core: Path, buckets_workspace: Path, tmp_path: Path, request: pytest.FixtureRequest
):
    """Runs a named scenario with the public client and returns what it reported."""
    home = tmp_path / "home"
    home.mkdir()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WORKFLOW_", "PYTHON")) and key not in ("GITHUB_TOKEN", "GITHUB_PAT")
    }
    environment.update(
        HOME=str(home),
        WORKFLOW_WORKSPACE=str(buckets_workspace),
        WORKFLOW_HTTP_WORKSPACE=str(buckets_workspace),
    )
    pipeline = "compat-" + request.node.name.split("[")[0].removeprefix("test_")[:40].replace(
        "_", "-"
    )

    def run(name: str) -> dict[str, Any]:
        done = subprocess.run(
            [str(workflow_core), str(SCENARIOS), name, pipeline],
            capture_output=True,
            text=True,
            env=environment,
            cwd=tmp_path,
            timeout=300,
        )
        assert done.returncode == 0, f"scenario {name} failed:\n{done.stdout}\n{done.stderr}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    run.pipeline = pipeline  # type: ignore[attr-defined]
    return run


def test_deposit_returns_ids_or_true_and_stores_the_work_queued(scenario) -> None:
    seen = scenario("deposit")
    assert len(seen["ids"]) == 1 and isinstance(seen["ids"][0], str)
    assert seen["plain"] is True
    assert len(seen["several"]) == 2 and len(set(seen["several"])) == 2
    [stored] = seen["stored"]
    assert (stored["id"], stored["status"], stored["pipeline"]) == (
        seen["ids"][0],
        "queued",
        scenario.pipeline,
    )
    assert "_id" not in stored


def test_withdraw_hands_out_the_most_urgent_first_then_none(scenario) -> None:
    taken = scenario("withdraw_order")["taken"]
    assert [work["priority"] for work in taken[:3]] == [5, 3, 2]
    assert all(
        work["status"] == "running" and work["attempt"] == 1 and work["start"] for work in taken[:3]
    )
    assert taken[3] is None


def test_withdraw_applies_each_filter(scenario) -> None:
    seen = scenario("withdraw_filters")
    assert seen["by_tag"]["tags"] == ["b"]
    assert (seen["by_site"]["site"], seen["by_site"]["tags"]) == ("testing", ["c"])
    assert seen["by_user"]["user"] == "ann"
    assert seen["by_event_parent"]["config"]["parent"] == "father"


def test_update_stores_status_results_products_and_stop(scenario) -> None:
    seen = scenario("update")
    stored = seen["stored"]
    assert seen["updated"] is True
    assert (stored["status"], stored["results"], stored["products"]) == (
        "success",
        {"answer": 42},
        ["/data/answer.txt"],
    )
    assert stored["stop"] == pytest.approx(seen["start"] + 1.5)


def test_view_projects_and_pages_and_status_counts(scenario) -> None:
    seen = scenario("view_and_status")
    assert len(seen["projected"]) == 2
    assert all(set(work) == {"id", "tags"} and "x" in work["tags"] for work in seen["projected"])
    first, second = seen["paged"]
    assert len(first) == 2 and len(second) == 1 and not set(first) & set(second)
    assert seen["details"]["total"] == 3 and seen["details"]["queued"] == 3
    assert seen["overall"]["total"] >= 3
    assert scenario.pipeline in seen["pipelines"]
    assert seen["info"]


def test_delete_by_work_ids_and_filters_until_the_pipeline_is_empty(scenario) -> None:
    seen = scenario("delete")
    assert seen["deleted_one"] is True and seen["by_ids"] is True and seen["many"] is True
    assert seen["left"] == [seen["kept"]]
    assert seen["nothing"] is False
    assert seen["everything"] is True and seen["total"] == 0


def test_audit_counts_and_requeues_failed_work_with_retries_left(scenario) -> None:
    seen = scenario("audit")
    assert set(seen["quiet"]) == {"failed", "expired", "stale"}
    assert all(isinstance(count, int) for count in seen["counts"].values())
    assert seen["counts"]["failed"] >= 1
    assert seen["requeued"]["status"] == "queued"
