"""A Work applied to the cluster runs as Jobs and ends with the right status, in the CR and buckets.

Real parts only: the local control plane (apiserver, Job controller, garbage
collector), the process kubelet running the runner as a local process, a
buckets server over HTTP, and the operator as its own process.
"""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def record(buckets_process, work) -> dict:
    """The buckets record of a Work resource."""
    work_id = work["status"]["bucketsId"]
    response = httpx.get(
        f"{buckets_process.url}/work/{work_id}", headers=buckets_process.headers, timeout=10
    )
    response.raise_for_status()
    return response.json()


def spec(**extra):
    return {"pipeline": "lifecycle", "site": "local", "user": "tester", "timeout": 60, **extra}


def test_a_command_work_succeeds_with_its_output_as_results(
    operator_process, works, buckets_process
):
    operator_process(buckets_process.url, **buckets_process.operator_env)
    started = time.monotonic()
    works.apply("echo", spec(command=["python3", "-c", "print('hello')"], retries=0))
    work = works.wait_phase("echo", "success", "failure")
    status = work["status"]
    assert status["phase"] == "success", status
    assert "hello" in status["results"]["stdout"]
    assert status["attempt"] == 1 and len(status["history"]) == 1
    assert status["history"][0]["exitCode"] == 0
    assert status["start"] <= status["stop"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Succeeded"]["status"] == "True"
    assert conditions["BackendSynced"]["status"] == "True"
    stored = record(buckets_process, work)
    assert stored["status"] == "success" and stored["attempt"] == 1
    assert "hello" in stored["results"]["stdout"]
    assert [job.metadata.name for job in works.jobs("echo")] == ["echo-a1"]
    print(f"\ncommand Work to success: {time.monotonic() - started:.1f} s")


def test_a_function_work_returns_its_results(operator_process, works, buckets_process):
    operator_process(buckets_process.url, **buckets_process.operator_env)
    works.apply(
        "mean",
        spec(function="workflow.examples.functions.mean", parameters={"values": [1, 2, 3, 6]}),
    )
    work = works.wait_phase("mean", "success", "failure")
    assert work["status"]["phase"] == "success", work["status"]
    assert work["status"]["results"]["mean"] == 3
    assert record(buckets_process, work)["results"]["mean"] == 3


def test_a_failed_first_attempt_is_retried_and_the_second_succeeds(
    operator_process, works, buckets_process, tmp_path
):
    operator_process(buckets_process.url, **buckets_process.operator_env)
    counter = tmp_path / "count"
    script = (
        "import pathlib,sys; p=pathlib.Path(sys.argv[1]); "
        "n=int(p.read_text()) if p.exists() else 0; "
        "p.write_text(str(n+1)); sys.exit(1 if n == 0 else 0)"
    )
    works.apply(
        "flaky", spec(command=["python3", "-c", script, str(counter)], retries=2, backoff=1)
    )
    work = works.wait_phase("flaky", "success", "failure", timeout=180)
    status = work["status"]
    assert status["phase"] == "success", status
    assert status["attempt"] == 2
    assert [(h["attempt"], h["exitCode"]) for h in status["history"]] == [(1, 1), (2, 0)]
    assert sorted(job.metadata.name for job in works.jobs("flaky")) == ["flaky-a1", "flaky-a2"]
    assert record(buckets_process, work)["attempt"] == 2


def test_every_attempt_timing_out_fails_the_work_with_deadline_exceeded(
    operator_process, works, buckets_process
):
    operator_process(buckets_process.url, **buckets_process.operator_env)
    works.apply("slow", spec(command=["sleep", "120"], timeout=3, retries=1, backoff=1))
    work = works.wait_phase("slow", "failure", "success", timeout=240)
    status = work["status"]
    assert status["phase"] == "failure"
    assert status["reason"] == "DeadlineExceeded", status
    assert [h["reason"] for h in status["history"]] == ["DeadlineExceeded", "DeadlineExceeded"]
    assert len(works.jobs("slow")) == 2
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Succeeded"]["status"] == "False"
    assert record(buckets_process, work)["status"] == "failure"


def test_deleting_a_running_work_kills_its_process_and_marks_buckets(
    operator_process, works, buckets_process, tmp_path
):
    import os

    operator_process(buckets_process.url, **buckets_process.operator_env)
    pidfile = tmp_path / "pid"
    works.apply(
        "doomed",
        spec(
            command=[
                "python3",
                "-c",
                f"import os,time; open('{pidfile}','w').write(str(os.getpid())); time.sleep(300)",
            ]
        ),
    )
    work = works.wait_phase("doomed", "running", timeout=120)
    deadline = time.monotonic() + 30
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    pid = int(pidfile.read_text())
    works.delete("doomed")
    works.wait("doomed", lambda w: not w, timeout=60, what="deletion")

    def alive() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.monotonic() + 60
    while alive() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not alive(), "the Work's process survived the deletion of its Work"
    assert record(buckets_process, work)["status"] == "failure"


def test_a_pod_that_cannot_start_fails_its_attempt_instead_of_hanging(
    operator_process, works, buckets_process
):
    operator_process(
        buckets_process.url,
        **buckets_process.operator_env,
        WORKFLOW_OPERATOR_PENDING_TIMEOUT_SECONDS="3",
    )
    works.apply(
        "nosecret",
        spec(command=["true"], retries=0, tokenSecretRef={"name": "absent", "key": "token"}),
    )
    work = works.wait_phase("nosecret", "failure", "success", timeout=120)
    assert work["status"]["reason"] == "ContainerConfigError", work["status"]
    assert "absent" in work["status"]["history"][0]["message"]


def test_results_too_large_for_the_resource_stay_whole_in_buckets(
    operator_process, works, buckets_process
):
    operator_process(buckets_process.url, **buckets_process.operator_env)
    writer = (
        "import json, os; json.dump({'results': {'blob': 'x' * 100000, 'n': 7}}, "
        "open(os.environ['WORKFLOW_RESULTS_PATH'], 'w'))"
    )
    works.apply("big", spec(command=["python3", "-c", writer], retries=0))
    work = works.wait_phase("big", "success", "failure")
    status = work["status"]
    assert status["phase"] == "success", status
    assert status.get("results") is None
    assert status["resultsTruncated"] is True and status["resultsBytes"] > 100000
    stored = record(buckets_process, work)
    assert stored["status"] == "success"
    assert stored["results"]["n"] == 7 and len(stored["results"]["blob"]) == 100000
