"""Crashes and outages lose nothing and run nothing twice."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

SPEC = {"pipeline": "resilience", "site": "local", "user": "tester", "timeout": 60, "retries": 0}


def test_an_operator_killed_right_after_creating_a_job_creates_no_second_job(
    operator_process, works, buckets_process
):
    first = operator_process(
        buckets_process.url,
        **buckets_process.operator_env,
        WORKFLOW_OPERATOR_CRASH_AT="after-job-create",
    )
    works.apply("crash", {**SPEC, "command": ["python3", "-c", "print('once')"]})
    assert first.wait_exit(120) == -9, first.log()[-3000:]
    work = works.get("crash")
    assert (work.get("status") or {}).get("attempt", 0) == 0, (
        "the status was written before the crash point"
    )
    assert [job.metadata.name for job in works.jobs("crash")] == ["crash-a1"]
    first.start(WORKFLOW_OPERATOR_CRASH_AT="")
    work = works.wait_phase("crash", "success", "failure")
    assert work["status"]["phase"] == "success", work["status"]
    assert [job.metadata.name for job in works.jobs("crash")] == ["crash-a1"]
    assert work["status"]["attempt"] == 1 and len(work["status"]["history"]) == 1


def test_an_operator_killed_after_depositing_records_the_work_once(
    operator_process, works, buckets_process
):
    first = operator_process(
        buckets_process.url,
        **buckets_process.operator_env,
        WORKFLOW_OPERATOR_CRASH_AT="after-deposit",
    )
    works.apply("deposit", {**SPEC, "command": ["true"]})
    assert first.wait_exit(120) == -9
    first.start(WORKFLOW_OPERATOR_CRASH_AT="")
    work = works.wait_phase("deposit", "success", "failure")
    assert work["status"]["phase"] == "success"
    listed = httpx.post(
        f"{buckets_process.url}/view",
        json={"query": {"pipeline": "resilience"}, "projection": {"id": True}, "limit": None},
        headers=buckets_process.headers, timeout=10,
    ).json()  # fmt: skip
    assert [item["id"] for item in listed] == [work["status"]["bucketsId"]]


def test_buckets_down_during_a_run_is_caught_up_when_it_returns(
    operator_process, works, buckets_process
):
    operator_process(buckets_process.url, **buckets_process.operator_env)
    works.apply(
        "outage",
        {**SPEC, "command": ["python3", "-c", "import time; time.sleep(4); print('done')"]},
    )
    works.wait_phase("outage", "running", timeout=120)
    buckets_process.stop()
    work = works.wait(
        "outage",
        lambda w: any(c["type"] == "BackendSynced" and c["status"] == "False"
                      for c in (w.get("status") or {}).get("conditions", [])),
        timeout=60, what="BackendSynced=False",
    )  # fmt: skip
    assert work["status"]["phase"] in ("running", "success")
    time.sleep(2)
    buckets_process.start()
    work = works.wait(
        "outage",
        lambda w: (w.get("status") or {}).get("phase") == "success"
        and any(c["type"] == "BackendSynced" and c["status"] == "True"
                for c in w["status"]["conditions"]),
        timeout=90, what="success and BackendSynced=True",
    )  # fmt: skip
    stored = httpx.get(
        f"{buckets_process.url}/work/{work['status']['bucketsId']}", timeout=10
    ).json()
    assert stored["status"] == "success"
    assert "done" in stored["results"]["stdout"]


def test_a_work_waits_for_a_successful_deposit_before_its_first_job(
    operator_process, works, buckets_process
):
    buckets_process.stop()
    operator_process(buckets_process.url, **buckets_process.operator_env)
    works.apply("patient", {**SPEC, "command": ["true"]})
    work = works.wait(
        "patient",
        lambda w: any(c["type"] == "BackendSynced" and c["status"] == "False"
                      for c in (w.get("status") or {}).get("conditions", [])),
        timeout=60, what="BackendSynced=False",
    )  # fmt: skip
    assert work["status"].get("phase", "created") == "created"
    time.sleep(3)
    assert works.jobs("patient") == [], "a Job started before the Work was recorded in buckets"
    buckets_process.start()
    work = works.wait_phase("patient", "success", "failure", timeout=90)
    assert work["status"]["phase"] == "success"
