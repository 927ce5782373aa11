"""What a user sees of a Work while it runs in a real container, from each place they look.

kubectl reads the Work resource; buckets and the public ``workflow-core``
client read the shared record. During the run all three say ``running``,
with the attempt and its start; at the end all three say ``success``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from fixtures.workspace import write_workspace

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.realnode]

SCENARIOS = Path(__file__).resolve().parents[1] / "compat" / "workflow_core_scenarios.py"


def upstream_view(python: Path, workspace: Path, work_id: str, home: Path) -> dict:
    """The record as the public client shows it (run in its own virtualenv)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKFLOW_", "PYTHON"))}
    env.update(HOME=str(home), WORKFLOW_WORKSPACE=str(workspace),
               WORKFLOW_HTTP_WORKSPACE=str(workspace))  # fmt: skip
    done = subprocess.run(
        [str(python), str(SCENARIOS), "one", work_id],
        capture_output=True, text=True, env=env, cwd=home, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_during_a_run_kubectl_buckets_and_the_public_client_all_say_running(
    real_operator, real_works, buckets_process, real_cluster, real_namespace, workflow_core,
    workspace, tmp_path,
):  # fmt: skip
    real_operator(buckets_process.url)
    write_workspace(workspace, buckets_process.url)
    home = tmp_path / "home"
    home.mkdir()
    real_works.apply(
        "steady",
        {"pipeline": "watched", "site": "local", "user": "tester", "timeout": 120,
         "retries": 0, "command": ["sleep", "25"]},
    )  # fmt: skip
    work = real_works.wait_phase("steady", "running", timeout=120)
    work_id = work["status"]["bucketsId"]
    shown = real_cluster.kubectl(
        "get", "work", "steady", "-n", real_namespace,
        "-o", "jsonpath={.status.phase} {.status.attempt}",
    ).stdout.split()  # fmt: skip
    assert shown == ["running", "1"]

    def stored() -> dict:
        return httpx.get(f"{buckets_process.url}/work/{work_id}", timeout=10).json()

    record = real_cluster.wait_for(
        lambda: (r := stored())["status"] == "running" and r,
        timeout=5,
        message="buckets to show the Work running",
    )
    assert record["attempt"] == 1 and record["start"], record
    upstream = upstream_view(workflow_core, workspace, work_id, home)
    assert upstream["status"] == "running", upstream
    # The operator records the pod's start (whole seconds) as soon as it runs; the
    # runner then records its own, a moment later: both are this attempt's start.
    assert upstream["attempt"] == 1 and abs(upstream["start"] - record["start"]) < 10

    done = real_works.wait_phase("steady", "success", "failure", timeout=120)
    assert done["status"]["phase"] == "success", done["status"]
    assert stored()["status"] == "success"
    final = upstream_view(workflow_core, workspace, work_id, home)
    assert final["status"] == "success" and final["stop"] >= final["start"]
