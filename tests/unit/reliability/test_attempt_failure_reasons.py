"""An attempt that ends by a fault below the operator fails with a reason that says which.

A process killed by a signal (the OOM killer's SIGKILL) is ``Killed``: the
runner says so when the Work's own process dies while the runner lives on,
the operator when the runner itself dies and leaves no summary behind (exit
code 128 + signal, or the kubelet's ``OOMKilled``). A pod deleted under its
Job is ``PodDeleted``. A pod that succeeded is not failed by a Job deadline
the Job controller noticed late. And an attempt whose large results exist
nowhere (too big for the termination message, and buckets was away when the
runner tried to record them) is ``ResultsNotRecorded``, so a retry makes them.
"""

from __future__ import annotations

import json
import sys

from workflow.controller.observing import JobView, PodView
from workflow.controller.planning import Observed, job_refused, plan
from workflow.controller.resource import WorkSpec, WorkStatus
from workflow.controller.settings import OperatorSettings
from workflow.definitions.work import WorkDocument
from workflow.runner.execute import execute

NOW = 1_800_000_000.0
SUICIDE = (
    "import os, signal; print('about to die', flush=True); os.kill(os.getpid(), signal.SIGKILL)"
)


def test_a_command_killed_by_sigkill_fails_as_killed_naming_the_signal() -> None:
    work = WorkDocument(pipeline="p", site="s", user="u", command=[sys.executable, "-c", SUICIDE])
    outcome = execute(work)
    assert (outcome.status, outcome.reason, outcome.exit_code) == ("failure", "Killed", 137)
    assert "killed by SIGKILL (exit code 137)" in outcome.message
    assert "out-of-memory" in outcome.message
    assert outcome.results is not None and "about to die" in outcome.results["stdout"]


def test_a_function_whose_process_is_killed_fails_as_killed() -> None:
    work = WorkDocument(
        pipeline="p",
        site="s",
        user="u",
        function="unit.reliability.reliability_samples.die_by_sigkill",
    )
    outcome = execute(work)
    assert (outcome.status, outcome.reason, outcome.exit_code) == ("failure", "Killed", 137)
    assert "function unit.reliability.reliability_samples.die_by_sigkill was killed by SIGKILL" in (
        outcome.message
    )


def _job(**extra) -> JobView:
    values = dict(
        name="w-a1", attempt=1, run_id=None, active=0, succeeded=0, failed=1, finished="Failed",
        reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit",
        start=NOW - 5, completion=None, created=NOW - 6, deleting=False,
    )  # fmt: skip
    return JobView(**{**values, **extra})


def _pod(**extra) -> PodView:
    values = dict(
        name="w-a1-x", attempt=1, phase="Failed", reason=None, start=NOW - 4, created=NOW - 5,
        waiting_reason=None, waiting_message=None, unschedulable=None, running_since=None,
        exit_code=137, terminated_reason="Error", termination_message="last log line\n",
        started=NOW - 3, finished=NOW - 1,
    )  # fmt: skip
    return PodView(**{**values, **extra})


def _ended(pod: PodView | None, retries: int = 1, job: JobView | None = None):
    spec = WorkSpec.model_validate(
        {"pipeline": "p", "site": "s", "user": "u", "command": ["true"], "retries": retries}
    )
    status = WorkStatus(bucketsId="uid", phase="running", attempt=1, job="w-a1", start=NOW - 3)
    observed = Observed(
        name="w", uid="uid", generation=1, spec=spec, status=status, jobs=[job or _job()],
        pods=[pod] if pod else [], now=NOW,
    )  # fmt: skip
    return plan(observed, OperatorSettings(backoff_seconds=1))


def test_a_runner_killed_by_sigkill_fails_its_attempt_as_killed_and_is_retried() -> None:
    step = _ended(_pod())
    record = step.status.history[-1]
    assert (record.reason, record.exitCode) == ("Killed", 137)
    assert "killed by SIGKILL (exit code 137)" in record.message
    assert "out of memory" in record.message
    assert step.status.phase == "queued" and step.status.nextAttemptAt == NOW + 1


def test_an_oom_killed_container_fails_its_attempt_as_oomkilled() -> None:
    step = _ended(_pod(terminated_reason="OOMKilled"), retries=0)
    assert step.status.phase == "failure"
    assert step.status.reason == "OOMKilled"
    assert "ran out of memory" in step.status.history[-1].message


def test_the_runners_own_summary_still_wins_over_its_exit_code() -> None:
    summary = {"status": "failure", "reason": "DeadlineExceeded", "message": "too slow"}
    step = _ended(_pod(exit_code=1, termination_message=json.dumps(summary)))
    assert step.status.history[-1].reason == "DeadlineExceeded"


def test_an_ordinary_failure_is_still_an_error() -> None:
    step = _ended(_pod(exit_code=3))
    assert step.status.history[-1].reason == "Error"


def test_a_pod_deleted_under_its_job_fails_the_attempt_as_pod_deleted() -> None:
    step = _ended(None)
    record = step.status.history[-1]
    assert record.reason == "PodDeleted"
    assert record.message == "the pod of attempt 1 was deleted before it finished"
    assert step.status.phase == "queued"


def test_a_pod_being_deleted_keeps_the_runners_words_in_the_message() -> None:
    summary = {
        "status": "failure",
        "reason": "Interrupted",
        "message": "the runner was asked to stop",
    }
    step = _ended(_pod(deleting=True, exit_code=1, termination_message=json.dumps(summary)))
    record = step.status.history[-1]
    assert record.reason == "PodDeleted"
    assert record.message.endswith(": the runner was asked to stop")


def test_a_deadline_that_deletes_the_pod_stays_a_deadline() -> None:
    step = _ended(_pod(deleting=True), job=_job(reason="DeadlineExceeded"))
    assert step.status.history[-1].reason == "DeadlineExceeded"


def test_a_pod_that_succeeded_wins_over_a_deadline_the_job_controller_noticed_late() -> None:
    summary = {"status": "success", "reason": "Completed", "message": "done", "results": {"n": 1}}
    pod = _pod(phase="Succeeded", exit_code=0, terminated_reason="Completed",
               termination_message=json.dumps(summary))  # fmt: skip
    step = _ended(pod, job=_job(reason="DeadlineExceeded", message="Job was active longer"))
    assert step.status.phase == "success"
    assert step.status.history[-1].reason == "Completed"
    assert step.status.results == {"n": 1}


def test_a_deadline_without_a_successful_pod_is_still_a_deadline() -> None:
    pod = _pod(phase="Failed", exit_code=143, termination_message="")
    step = _ended(pod, retries=0, job=_job(reason="DeadlineExceeded", message="too long"))
    assert (step.status.phase, step.status.reason) == ("failure", "DeadlineExceeded")


def _completed(summary: dict, retries: int = 1):
    pod = _pod(phase="Succeeded", exit_code=0, terminated_reason="Completed",
               termination_message=json.dumps(summary))  # fmt: skip
    return _ended(pod, retries=retries, job=_job(finished="Complete", reason=None, message=None))


def test_large_results_the_runner_could_not_record_fail_the_attempt_so_a_retry_makes_them():
    summary = {"status": "success", "reason": "Completed", "message": "exited with code 0",
               "resultsTruncated": True, "resultsBytes": 100_000, "recorded": False}  # fmt: skip
    step = _completed(summary)
    record = step.status.history[-1]
    assert record.reason == "ResultsNotRecorded"
    assert "results did not fit the pod's termination message" in record.message
    assert step.status.phase == "queued", "retried"
    assert _completed(summary, retries=0).status.phase == "failure"


def test_large_results_the_runner_recorded_make_a_success():
    summary = {"status": "success", "reason": "Completed", "message": "exited with code 0",
               "resultsTruncated": True, "resultsBytes": 100_000, "recorded": True}  # fmt: skip
    step = _completed(summary)
    assert step.status.phase == "success" and step.status.resultsTruncated is True


def test_results_that_fit_the_summary_need_no_record_in_buckets():
    summary = {"status": "success", "reason": "Completed", "message": "ok",
               "results": {"n": 1}, "recorded": False}  # fmt: skip
    assert _completed(summary).status.phase == "success"


def test_a_job_the_apiserver_refuses_fails_the_work_at_once_with_its_words() -> None:
    spec = WorkSpec.model_validate(
        {"pipeline": "p", "site": "s", "user": "u", "command": ["true"], "retries": 3}
    )
    status = WorkStatus(bucketsId="uid", phase="queued", attempt=1, job="w-a1")
    failed = job_refused(
        status, spec, "quantities must match", now=NOW, generation=2, settings=OperatorSettings()
    )
    assert (failed.phase, failed.reason, failed.stop) == ("failure", "JobRefused", NOW)
    assert failed.history[-1].reason == "JobRefused" and failed.history[-1].attempt == 1
    assert "the apiserver refused Job w-a1: quantities must match" in failed.message
    succeeded = next(c for c in failed.conditions if c.type == "Succeeded")
    assert (succeeded.status, succeeded.reason) == ("False", "JobRefused")


def test_kube_turns_an_invalid_job_answer_into_job_refused() -> None:
    import asyncio

    import pytest
    from kubernetes.client import ApiClient
    from kubernetes.client.exceptions import ApiException

    from workflow.controller.kube import JobRefused, Kube

    kube = Kube(threads=1, api_client=ApiClient())

    def refuse(group, version, namespace, plural, manifest):
        assert (group, version, plural) == ("batch", "v1", "jobs")
        error = ApiException(status=422, reason="Unprocessable Entity")
        error.body = json.dumps({"message": 'Job.batch "w-a1" is invalid: spec.x: Invalid'})
        raise error

    kube._api.create_namespaced_custom_object = refuse
    manifest = {"metadata": {"name": "w-a1", "namespace": "ns"}}
    try:
        with pytest.raises(JobRefused, match=r'Job\.batch "w-a1" is invalid'):
            asyncio.run(kube.create_job(manifest))
    finally:
        kube.close()


def test_a_long_command_is_shortened_in_messages_so_the_reason_stays_in_sight() -> None:
    script = "import sys; sys.exit(3)  # " + "x" * 3000
    outcome = execute(WorkDocument(pipeline="p", site="s", user="u",
                                   command=[sys.executable, "-c", script]))  # fmt: skip
    assert outcome.reason == "Error"
    assert len(outcome.message) < 400 and outcome.message.endswith("exited with code 3")
