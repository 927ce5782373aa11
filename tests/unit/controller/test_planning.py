"""The planner decides every step of a Work's life from what it observes."""

import json

import pytest

from workflow.controller.observing import JobView, PodView
from workflow.controller.planning import Observed, plan
from workflow.controller.resource import AttemptRecord, WorkSpec, WorkStatus
from workflow.controller.settings import OperatorSettings

NOW = 1_800_000_000.0
SETTINGS = OperatorSettings(backoff_seconds=7, pending_timeout_seconds=60, results_cap_bytes=100)


def spec(**extra):
    return WorkSpec.model_validate(
        {"pipeline": "demo", "site": "local", "user": "ada", "command": ["true"], **extra}
    )


def job(attempt=1, finished=None, reason=None, **extra):
    values = dict(
        name=f"w-a{attempt}",
        attempt=attempt,
        run_id=None,
        active=0 if finished else 1,
        succeeded=1 if finished == "Complete" else 0,
        failed=1 if finished == "Failed" else 0,
        finished=finished,
        reason=reason,
        message=None,
        start=NOW - 5,
        completion=None,
        created=NOW - 6,
        deleting=False,
    )
    values.update(extra)
    return JobView(**values)


def pod(attempt=1, phase="Running", summary=None, **extra):
    values = dict(
        name=f"w-a{attempt}-xyz",
        attempt=attempt,
        phase=phase,
        reason=None,
        start=NOW - 4,
        created=NOW - 5,
        waiting_reason=None,
        waiting_message=None,
        unschedulable=None,
        running_since=NOW - 3 if phase == "Running" else None,
        exit_code={"Succeeded": 0, "Failed": 1}.get(phase),
        terminated_reason=None,
        termination_message=json.dumps(summary) if summary is not None else None,
        started=NOW - 3,
        finished=NOW - 1 if phase in ("Succeeded", "Failed") else None,
    )
    values.update(extra)
    return PodView(**values)


def observe(status=None, jobs=(), pods=(), work_spec=None, now=NOW, recently_created=None):
    return Observed(
        name="w",
        uid="uid-1",
        generation=1,
        spec=work_spec or spec(),
        status=status or WorkStatus(),
        jobs=list(jobs),
        pods=list(pods),
        now=now,
        recently_created=recently_created or {},
    )


def deposited(**extra):
    return WorkStatus(**{"bucketsId": "uid-1", "phase": "queued", "creation": NOW - 10, **extra})


def condition(status, type_="Succeeded"):
    return next(c for c in status.conditions if c.type == type_)


def test_a_new_work_is_deposited_first():
    step = plan(observe(), SETTINGS)
    assert step.deposit and step.create_job is None and step.wait == 0


def test_a_deposited_work_gets_the_job_of_its_first_attempt():
    step = plan(observe(deposited()), SETTINGS)
    assert step.create_job == 1
    assert (step.status.attempt, step.status.job, step.status.phase) == (1, "w-a1", "queued")
    assert step.events[0][1] == "JobCreated"
    # buckets hears of the attempt from its runner; an operator write could race its outcome.
    assert not step.sync


def test_a_job_created_before_a_crash_is_adopted_not_created_again():
    step = plan(observe(deposited(), jobs=[job(1)]), SETTINGS)
    assert step.create_job is None
    assert (step.status.attempt, step.status.job) == (1, "w-a1")
    # Before the attempt ends, only its runner writes to buckets (no race with its outcome).
    assert not step.sync


def test_a_running_pod_makes_the_work_running_with_its_start_time():
    status = deposited(attempt=1, job="w-a1")
    step = plan(observe(status, jobs=[job(1)], pods=[pod(1)]), SETTINGS)
    assert step.status.phase == "running" and step.status.start == NOW - 3
    assert condition(step.status).reason == "Running"
    # buckets is told at once (guarded by attempt: it never lands over the outcome).
    assert step.sync


def test_a_complete_job_is_a_success_with_the_runner_results():
    status = deposited(attempt=1, job="w-a1", phase="running", start=NOW - 3)
    summary = {
        "status": "success",
        "results": {"answer": 42},
        "products": ["a.h5"],
        "stop": NOW - 1,
    }
    step = plan(
        observe(status, jobs=[job(1, "Complete")], pods=[pod(1, "Succeeded", summary)]), SETTINGS
    )
    assert step.status.phase == "success"
    assert step.status.results == {"answer": 42} and step.status.products == ["a.h5"]
    assert step.status.stop == NOW - 1
    assert [r.attempt for r in step.status.history] == [1]
    assert condition(step.status).status == "True" and step.sync


def test_results_over_the_cap_stay_in_buckets_and_are_marked_truncated():
    status = deposited(attempt=1, job="w-a1", phase="running")
    summary = {"status": "success", "results": {"blob": "x" * 500}}
    step = plan(
        observe(status, jobs=[job(1, "Complete")], pods=[pod(1, "Succeeded", summary)]), SETTINGS
    )
    assert step.status.results is None
    assert step.status.resultsTruncated is True and step.status.resultsBytes > 100


def test_history_records_the_works_own_exit_code_beside_the_runners_reason():
    # The command exited 3; the runner (the container) exits 1 for any failed Work.
    summary = {"status": "failure", "reason": "Error", "message": "exit code 3", "exitCode": 3}
    status = deposited(attempt=1, job="w-a1", phase="running")
    step = plan(
        observe(
            status,
            jobs=[job(1, "Failed", "BackoffLimitExceeded")],
            pods=[pod(1, "Failed", summary, exit_code=1)],
        ),
        SETTINGS,
    )
    record = step.status.history[-1]
    assert (record.exitCode, record.reason) == (3, "Error")


def test_history_keeps_the_containers_exit_code_when_the_runner_could_not_report():
    status = deposited(attempt=1, job="w-a1", phase="running")
    step = plan(
        observe(
            status,
            jobs=[job(1, "Failed", "BackoffLimitExceeded")],
            pods=[pod(1, "Failed", exit_code=137)],
        ),
        SETTINGS,
    )
    record = step.status.history[-1]
    assert (record.exitCode, record.reason) == (137, "Killed")


def test_a_child_killed_under_a_memory_limit_is_recorded_as_oom_killed():
    # The runner saw its Work's process die of SIGKILL; the kubelet says why: OOMKilled.
    summary = {"status": "failure", "reason": "Killed", "exitCode": 137,
               "message": "the command was killed by SIGKILL (exit code 137)"}  # fmt: skip
    status = deposited(attempt=1, job="w-a1", phase="running")
    step = plan(
        observe(
            status,
            jobs=[job(1, "Failed", "BackoffLimitExceeded")],
            pods=[pod(1, "Failed", summary, exit_code=1, terminated_reason="OOMKilled")],
        ),
        SETTINGS,
    )
    record = step.status.history[-1]
    assert (record.exitCode, record.reason) == (137, "OOMKilled")
    without_oom = plan(
        observe(
            status,
            jobs=[job(1, "Failed", "BackoffLimitExceeded")],
            pods=[pod(1, "Failed", summary, exit_code=1, terminated_reason="Error")],
        ),
        SETTINGS,
    )
    assert without_oom.status.history[-1].reason == "Killed"


def test_a_failed_attempt_with_retries_left_waits_the_backoff_then_runs_again():
    status = deposited(attempt=1, job="w-a1", phase="running")
    failed = plan(
        observe(
            status,
            jobs=[job(1, "Failed", "BackoffLimitExceeded")],
            pods=[pod(1, "Failed", {"status": "failure", "reason": "Error", "message": "boom"})],
        ),
        SETTINGS,
    )
    assert failed.status.phase == "queued" and failed.wait == 7
    assert failed.status.history[-1].reason == "Error" and failed.status.history[-1].exitCode == 1
    assert condition(failed.status).reason == "Retrying"
    early = plan(observe(failed.status, jobs=[job(1, "Failed")], now=NOW + 3), SETTINGS)
    assert early.create_job is None and early.wait == pytest.approx(4)
    due = plan(observe(failed.status, jobs=[job(1, "Failed")], now=NOW + 8), SETTINGS)
    assert due.create_job == 2 and due.status.job == "w-a2"


def test_the_last_attempt_timing_out_fails_the_work_with_deadline_exceeded():
    history = [AttemptRecord(attempt=1, job="w-a1", reason="DeadlineExceeded")]
    status = deposited(attempt=2, job="w-a2", phase="running", history=history)
    step = plan(
        observe(
            status,
            jobs=[job(1, "Failed", "DeadlineExceeded"), job(2, "Failed", "DeadlineExceeded")],
            work_spec=spec(retries=1),
        ),
        SETTINGS,
    )
    assert step.status.phase == "failure"
    assert step.status.reason == "DeadlineExceeded"
    assert condition(step.status).status == "False"
    assert len(step.status.history) == 2


def test_a_pod_stuck_pending_fails_its_attempt_after_the_pending_timeout():
    status = deposited(attempt=1, job="w-a1")
    stuck = pod(
        1,
        "Pending",
        waiting_reason="ErrImagePull",
        waiting_message="no such image",
        created=NOW - 30,
    )
    waiting = plan(observe(status, jobs=[job(1)], pods=[stuck]), SETTINGS)
    assert waiting.status.phase == "queued" and waiting.wait == pytest.approx(30)
    late = plan(observe(status, jobs=[job(1)], pods=[stuck], now=NOW + 31), SETTINGS)
    assert late.delete_job == "w-a1"
    assert late.status.history[-1].reason == "ImagePullFailed"
    assert "no such image" in late.status.history[-1].message


def test_a_job_deleted_behind_the_operators_back_is_a_failed_attempt():
    status = deposited(attempt=1, job="w-a1", phase="running")
    assert plan(observe(status, recently_created={1: NOW - 2}), SETTINGS).wait == 1.0
    step = plan(observe(status), SETTINGS)
    assert step.status.history[-1].reason == "JobDeleted"
    assert step.status.phase == "queued" and step.status.attempt == 1


def test_a_site_this_cluster_does_not_serve_fails_without_running():
    step = plan(observe(work_spec=spec(site="elsewhere")), OperatorSettings(sites=["local"]))
    assert step.status.phase == "failure" and step.status.reason == "InvalidSpec"
    assert "spec.site" in step.status.message
    assert not step.deposit and step.create_job is None and step.done


def test_a_finished_work_is_done_once_buckets_has_it():
    status = deposited(phase="success", attempt=1)
    assert plan(observe(status), SETTINGS).sync
    status.conditions = plan(observe(deposited()), SETTINGS).status.conditions
    from workflow.controller import conditions as cond

    status.conditions = cond.set_condition(
        status.conditions, "BackendSynced", "True", "Synced", "", now=NOW, generation=1
    )
    assert plan(observe(status), SETTINGS).done


def test_changing_run_id_of_a_finished_work_starts_a_fresh_run():
    status = deposited(phase="success", attempt=2)
    step = plan(observe(status, work_spec=spec(runId="again")), SETTINGS)
    assert step.status.phase == "created" and step.status.attempt == 0
    assert step.status.bucketsId is None and step.status.runId == "again"
