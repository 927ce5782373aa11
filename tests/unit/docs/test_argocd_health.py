"""The Argo CD health check in docs/ gives the right health for each state of a Work.

The Lua script is run as Argo CD runs it: with the Work as the global ``obj``,
returning a table with ``status`` and ``message``. The statuses below are the
ones the operator writes (see controller/planning.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lupa  # a test dependency: runs Lua from Python

DOCS = Path(__file__).resolve().parents[3] / "docs"
SCRIPT = (DOCS / "argocd-health.lua").read_text()


def health(work: dict[str, Any]) -> tuple[str, str]:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    check = lua.eval(f"function(obj)\n{SCRIPT}\nend")
    result = check(lua.table_from(work, recursive=True))
    return result["status"], result["message"]


def condition(kind: str, state: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": state,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 1,
    }


def work(status: dict[str, Any] | None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "workflow.dev/v1alpha1",
        "kind": "Work",
        "metadata": {"name": "w", "generation": 1},
        "spec": {"pipeline": "p", "site": "s", "user": "u", "command": ["true"], **spec},
    }
    if status is not None:
        body["status"] = status
    return body


SYNCED = condition("BackendSynced", "True", "Synced", "buckets holds phase")


def test_a_work_without_status_is_progressing():
    assert health(work(None)) == (
        "Progressing",
        "Waiting for the workflow operator to pick up the Work",
    )


def test_a_queued_work_is_progressing_with_the_operator_message():
    message = "attempt 1 of 3: Job w-a1 created"
    status = {
        "phase": "queued",
        "attempt": 1,
        "message": message,
        "conditions": [condition("Succeeded", "Unknown", "Pending", message), SYNCED],
    }
    assert health(work(status)) == ("Progressing", message)


def test_a_running_work_is_progressing():
    message = "attempt 1 of 3 running in pod w-a1-x"
    status = {
        "phase": "running",
        "message": message,
        "conditions": [condition("Succeeded", "Unknown", "Running", message)],
    }
    assert health(work(status)) == ("Progressing", message)


def test_a_work_waiting_for_its_next_attempt_is_progressing():
    message = "attempt 1 of 3 failed (Error: exit 1); attempt 2 in 10 s"
    status = {
        "phase": "queued",
        "message": message,
        "conditions": [condition("Succeeded", "Unknown", "Retrying", message), SYNCED],
    }
    assert health(work(status)) == ("Progressing", message)


def test_a_succeeded_work_is_healthy():
    message = "attempt 1 of 3 succeeded"
    status = {
        "phase": "success",
        "message": message,
        "conditions": [condition("Succeeded", "True", "Completed", message), SYNCED],
    }
    assert health(work(status)) == ("Healthy", message)


def test_a_failed_work_is_degraded_with_the_reason():
    message = "attempt 3 of 3 failed (DeadlineExceeded: timeout); no attempts left"
    status = {
        "phase": "failure",
        "message": message,
        "conditions": [condition("Succeeded", "False", "DeadlineExceeded", message), SYNCED],
    }
    assert health(work(status)) == ("Degraded", message)


def test_a_refused_spec_is_degraded():
    message = "spec.site 'mars' is not one of this cluster's sites ['local']"
    status = {
        "phase": "failure",
        "reason": "InvalidSpec",
        "message": message,
        "conditions": [condition("Succeeded", "False", "InvalidSpec", message)],
    }
    assert health(work(status)) == ("Degraded", message)


def test_the_phase_decides_when_there_is_no_condition():
    assert health(work({"phase": "success"}))[0] == "Healthy"
    assert health(work({"phase": "failure"}))[0] == "Degraded"
    assert health(work({"phase": "running"})) == ("Progressing", "phase running")


def test_the_condition_message_stands_in_for_a_missing_status_message():
    status = {
        "phase": "success",
        "conditions": [condition("Succeeded", "True", "Completed", "done")],
    }
    assert health(work(status)) == ("Healthy", "done")


def test_a_finished_work_given_a_new_run_id_is_progressing():
    status = {
        "phase": "success",
        "runId": "one",
        "message": "attempt 1 of 3 succeeded",
        "conditions": [condition("Succeeded", "True", "Completed", "ok"), SYNCED],
    }
    assert health(work(status, runId="two")) == ("Progressing", "Run two requested")
    assert health(work(status, runId="one"))[0] == "Healthy"


def test_a_work_not_yet_recorded_in_buckets_says_so():
    status = {
        "phase": "success",
        "message": "attempt 1 of 3 succeeded",
        "conditions": [
            condition("Succeeded", "True", "Completed", "ok"),
            condition("BackendSynced", "False", "UpdateFailed", "buckets is down"),
        ],
    }
    assert health(work(status)) == (
        "Healthy",
        "attempt 1 of 3 succeeded (buckets not updated yet: buckets is down)",
    )


def test_the_documented_configmap_embeds_this_exact_script():
    text = (DOCS / "argocd-health.md").read_text()
    block = re.search(
        r"resource\.customizations\.health\.workflow\.dev_Work: \|\n(.*?)```", text, re.S
    )
    assert block is not None
    embedded = "".join(
        line[4:] if line.strip() else line for line in block.group(1).splitlines(keepends=True)
    )
    assert embedded == SCRIPT
