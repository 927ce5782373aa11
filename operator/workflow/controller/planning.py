"""What to do next for one Work, decided from what is observed (pure, no I/O).

``plan`` looks at the Work's spec and status and at the summaries of its Jobs
and Pods, and returns a ``Plan``: the next status, whether to deposit to
buckets, which Job to create or delete, which Event to post and how long to
wait before looking again. The reconciler (``reconciler.Look``) carries a plan out; everything that
decides lives here, where it is tested without a cluster.

Safety rests on two facts: Job names are deterministic per attempt, so a Job
created just before a crash is found and adopted instead of created twice;
and a buckets deposit carries the Work's own id, so a repeated deposit is
idempotent.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

from workflow.controller import conditions as cond
from workflow.controller.jobs import job_name
from workflow.controller.observing import STUCK_REASONS, JobView, PodView
from workflow.controller.resource import (
    FINAL_PHASES,
    AttemptRecord,
    ConditionStatus,
    WorkSpec,
    WorkStatus,
)
from workflow.controller.settings import OperatorSettings
from workflow.definitions.work import json_size


@dataclass
class Observed:
    """Everything the planner may look at for one Work."""

    name: str
    uid: str
    generation: int | None
    spec: WorkSpec
    status: WorkStatus
    jobs: list[JobView]
    pods: list[PodView]
    now: float
    #: Attempts whose Job this operator process created and may not see yet (watch lag).
    recently_created: dict[int, float] = field(default_factory=dict)


@dataclass
class Plan:
    """The next steps for one Work."""

    status: WorkStatus
    deposit: bool = False
    create_job: int | None = None
    delete_job: str | None = None
    sync: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)
    wait: float | None = None
    done: bool = False


def buckets_id(uid: str, run_id: str | None) -> str:
    """The Work's id in buckets: its uid, plus the run for a re-run."""
    return f"{uid}.{run_id}" if run_id else uid


def invalid_reason(spec: WorkSpec, settings: OperatorSettings) -> str | None:
    """Why the operator refuses to run this spec, or None. The apiserver judges the rest."""
    if not spec.function and not spec.command:
        return "spec has neither function nor command: nothing to run"
    if settings.sites and spec.site not in settings.sites:
        return f"spec.site {spec.site!r} is not one of this cluster's sites {settings.sites}"
    return None


def _backoff(spec: WorkSpec, settings: OperatorSettings) -> int:
    return settings.backoff_seconds if spec.backoff is None else spec.backoff


def _succeeded(
    status: WorkStatus, state: ConditionStatus, reason: str, message: str, obs: Observed
) -> None:
    status.conditions = cond.set_condition(
        status.conditions,
        cond.SUCCEEDED,
        state,
        reason,
        message,
        now=obs.now,
        generation=obs.generation,
    )


def plan(obs: Observed, settings: OperatorSettings) -> Plan:
    """Decide the next step for the Work described by ``obs``."""
    status = obs.status.model_copy(deep=True)
    status.observedGeneration = obs.generation
    spec = obs.spec

    if status.runId != spec.runId and (status.phase in FINAL_PHASES or status.bucketsId is None):
        # A new Work, or a finished one whose spec.runId changed: start a fresh run.
        rerun = status.bucketsId is not None
        status = WorkStatus(runId=spec.runId, observedGeneration=obs.generation)
        if rerun:
            _succeeded(status, "Unknown", "Rerun", f"run {spec.runId!r} requested", obs)
            result = Plan(
                status=status, events=[("Normal", "Rerun", f"run {spec.runId!r} requested")]
            )
            result.wait = 0
            return result

    if status.phase in FINAL_PHASES:
        synced = cond.get_condition(status.conditions, cond.BACKEND_SYNCED)
        if status.bucketsId and (synced is None or synced.status != "True"):
            return Plan(status=status, sync=True, wait=settings.resync_seconds)
        return Plan(status=status, done=True)

    problem = invalid_reason(spec, settings)
    if problem is not None:
        status.phase, status.reason, status.message = "failure", "InvalidSpec", problem
        status.stop = obs.now
        _succeeded(status, "False", "InvalidSpec", problem, obs)
        return Plan(
            status=status,
            sync=status.bucketsId is not None,
            events=[("Warning", "InvalidSpec", problem)],
            done=status.bucketsId is None,
        )

    if status.bucketsId is None:
        return Plan(status=status, deposit=True, wait=0)

    jobs = {job.attempt: job for job in obs.jobs if job.run_id == spec.runId}
    recorded = {record.attempt for record in status.history}
    following = status.attempt + 1
    if following in jobs and following not in recorded:
        # The Job of the next attempt exists but the status never said so
        # (the operator stopped between creating it and writing the status): adopt it.
        status.attempt, status.job = following, jobs[following].name
        status.phase, status.start, status.stop = "queued", None, None
        status.nextAttemptAt = None
        # buckets is not told: the attempt's runner records its start, and a write made
        # while the attempt may be recording its outcome could undo that outcome.
        return _follow(obs, status, jobs[following], settings)

    if status.attempt == 0 or status.attempt in recorded:
        return _next_attempt(obs, status, settings)

    job = jobs.get(status.attempt)
    if job is None:
        created = obs.recently_created.get(status.attempt)
        if created is not None and obs.now - created < 30:
            return Plan(status=status, wait=1.0)
        return _ended(
            obs,
            status,
            None,
            None,
            settings,
            "JobDeleted",
            f"Job {status.job} disappeared before its attempt finished",
        )
    return _follow(obs, status, job, settings)


def job_refused(
    status: WorkStatus,
    spec: WorkSpec,
    message: str,
    *,
    now: float,
    generation: int | None,
    settings: OperatorSettings,
) -> WorkStatus:
    """The status once the apiserver refused the current attempt's Job as invalid: a failure.

    The Job is built from the Work's spec, which is frozen once the Work has
    started, so no retry could do better; the message is the apiserver's.
    """
    status = status.model_copy(deep=True)
    message = f"the apiserver refused Job {status.job}: {message}"
    record = AttemptRecord(
        attempt=status.attempt, job=status.job or "", reason="JobRefused",
        message=message[:1024], start=None, stop=now,
    )  # fmt: skip
    status.history = [*status.history, record][-settings.history_limit :]
    status.phase, status.reason, status.stop = "failure", "JobRefused", now
    status.message = f"attempt {status.attempt} of {1 + spec.retries} could not start: {message}"
    status.conditions = cond.set_condition(
        status.conditions, cond.SUCCEEDED, "False", "JobRefused", status.message,
        now=now, generation=generation,
    )  # fmt: skip
    return status


def _next_attempt(obs: Observed, status: WorkStatus, settings: OperatorSettings) -> Plan:
    if status.nextAttemptAt is not None and obs.now < status.nextAttemptAt:
        return Plan(status=status, wait=status.nextAttemptAt - obs.now)
    attempt = status.attempt + 1
    status.attempt = attempt
    status.job = job_name(obs.name, attempt, obs.spec.runId)
    status.phase, status.start, status.stop, status.nextAttemptAt = "queued", None, None, None
    status.reason = "JobCreated"
    status.message = f"attempt {attempt} of {1 + obs.spec.retries}: Job {status.job} created"
    _succeeded(status, "Unknown", "Pending", status.message, obs)
    # No buckets write: the runner records the attempt's start itself, and a write
    # read-merged while the attempt records its outcome could undo that outcome.
    return Plan(
        status=status,
        create_job=attempt,
        events=[("Normal", "JobCreated", status.message)],
        wait=settings.resync_seconds,
    )


def _latest_pod(obs: Observed, attempt: int) -> PodView | None:
    pods = [pod for pod in obs.pods if pod.attempt == attempt]
    return max(pods, key=lambda pod: pod.created or 0.0) if pods else None


def _follow(
    obs: Observed,
    status: WorkStatus,
    job: JobView,
    settings: OperatorSettings,
) -> Plan:
    pod = _latest_pod(obs, status.attempt)
    if job.finished == "Complete" or (job.finished == "Failed" and _succeeded_in_time(job, pod)):
        return _ended(obs, status, job, pod, settings, "Completed", "")
    if job.finished == "Failed":
        reason, message = job.reason or "Failed", job.message or ""
        if reason == "BackoffLimitExceeded" and (pod is None or pod.deleting):
            # The pod was deleted under the Job (by hand, a drain, a node going away).
            reason = "PodDeleted"
            message = f"the pod of attempt {status.attempt} was deleted before it finished"
        elif reason == "BackoffLimitExceeded" and pod is not None and pod.exit_code is not None:
            reason = "Error"
        return _ended(obs, status, job, pod, settings, reason, message)
    if pod is not None and pod.phase == "Pending":
        stuck = STUCK_REASONS.get(pod.waiting_reason or "") or (
            "Unschedulable" if pod.unschedulable else None
        )
        since = pod.created or job.created or obs.now
        if stuck is not None:
            remaining = since + settings.pending_timeout_seconds - obs.now
            if remaining <= 0:
                detail = pod.waiting_message or pod.unschedulable or pod.waiting_reason or ""
                result = _ended(
                    obs,
                    status,
                    job,
                    pod,
                    settings,
                    stuck,
                    f"pod stayed pending for {settings.pending_timeout_seconds} s: {detail}",
                )
                result.delete_job = job.name
                return result
            return Plan(status=status, wait=min(remaining, settings.resync_seconds))
    if pod is not None and pod.phase == "Running" and status.phase != "running":
        status.phase, status.reason = "running", "Running"
        status.start = pod.running_since or pod.start or obs.now
        status.message = (
            f"attempt {status.attempt} of {1 + obs.spec.retries} running in pod {pod.name}"
        )
        _succeeded(status, "Unknown", "Running", status.message, obs)
        # No Event here: the status and its Succeeded condition say it, and the pod's
        # own Started event too; one more write per Work would exceed the budget of 8.
        # buckets is told at once: the runner records its start too, but only once its
        # interpreter has started (seconds on a busy node). Both writes are guarded by
        # attempt, so neither can land over the outcome of the attempt (see BucketsSync.update).
        return Plan(status=status, sync=True, wait=settings.resync_seconds)
    return Plan(status=status, wait=settings.resync_seconds)


#: Marks an exit code the runner's summary did not give.
_NO_SUMMARY: Any = object()


def _outcome(pod: PodView | None, settings: OperatorSettings) -> dict[str, Any]:
    """Results, products and plots from the runner's summary, capped for the resource."""
    summary = (pod.summary() if pod else None) or {}
    results = summary.get("results")
    size = summary.get("resultsBytes")
    truncated = bool(summary.get("resultsTruncated"))
    if isinstance(results, dict):
        size = json_size(results)
        if size > settings.results_cap_bytes:
            results, truncated = None, True
    else:
        results = None
    return {
        "results": results,
        "resultsTruncated": truncated or None,
        "resultsBytes": size if truncated else None,
        "products": summary.get("products"),
        "plots": summary.get("plots"),
        "reason": summary.get("reason"),
        "message": summary.get("message"),
        "start": summary.get("start"),
        "stop": summary.get("stop"),
        # The Work's own exit code, as the runner saw it (None: the Work never ran);
        # the container's is the runner's, 1 whenever the Work failed.
        "exitCode": summary.get("exitCode", _NO_SUMMARY),
        # What the summary left out and the runner could not send to buckets either.
        "unrecorded": []
        if summary.get("recorded") is True
        else [name for name in ("results", "products", "plots") if summary.get(f"{name}Truncated")],
    }


def _succeeded_in_time(job: JobView, pod: PodView | None) -> bool:
    """A Job failed for its deadline although its pod had already succeeded.

    The Job controller checks the deadline before it counts succeeded pods, so
    when it looks late (its work queue backs off while the apiserver is away)
    a Work that finished in time is marked DeadlineExceeded. The runner
    enforces the timeout itself: its summary saying success is the truth.
    """
    if job.reason != "DeadlineExceeded" or pod is None or pod.exit_code != 0:
        return False
    return (pod.summary() or {}).get("status") == "success"


def _killed(pod: PodView | None) -> tuple[str, str] | None:
    """Reason and message when a signal, not the runner, ended the pod's process."""
    if pod is None or pod.exit_code is None:
        return None
    if pod.terminated_reason == "OOMKilled":
        return "OOMKilled", (
            f"the container ran out of memory and was killed (exit code {pod.exit_code}) "
            "before the runner could report; give the Work more memory in spec.resources"
        )
    if pod.exit_code <= 128:
        return None
    number = pod.exit_code - 128
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    cause = "out of memory, or the node stopped it" if number == signal.SIGKILL else "from outside"
    return "Killed", (
        f"the runner was killed by {name} (exit code {pod.exit_code}) before it could "
        f"report: {cause}"
    )


def _ended(
    obs: Observed,
    status: WorkStatus,
    job: JobView | None,
    pod: PodView | None,
    settings: OperatorSettings,
    reason: str,
    message: str,
) -> Plan:
    """Record how the current attempt ended, then finish the Work or schedule the next attempt."""
    outcome = _outcome(pod, settings)
    succeeded = reason == "Completed"
    unrecorded = outcome["unrecorded"] if succeeded else []
    if unrecorded:
        # Succeeded, but what it made exists nowhere now: fail the attempt, so a retry makes it.
        succeeded, reason = False, "ResultsNotRecorded"
        message = (
            f"the attempt succeeded, but its {' and '.join(unrecorded)} did not fit the pod's "
            "termination message and the runner could not record them in buckets"
        )
    elif not succeeded and outcome["reason"] and reason in ("Error", "Failed"):
        # The runner knows better: DeadlineExceeded, ResultsTooLarge, Killed, ...
        reason = outcome["reason"]
        if reason == "Killed" and pod is not None and pod.terminated_reason == "OOMKilled":
            # The runner saw its Work's process die of SIGKILL; the kubelet knows why.
            reason = "OOMKilled"
    elif not succeeded and reason in ("Error", "Failed") and (killed := _killed(pod)):
        reason, message = killed  # the runner itself died before it could say anything
    if reason == "PodDeleted" and outcome["message"]:
        message = f"{message}: {outcome['message']}"
    elif not unrecorded:
        message = outcome["message"] or message or ("completed" if succeeded else reason)
    start = (
        status.start
        or outcome["start"]
        or (pod.started if pod else None)
        or (job.start if job else None)
    )
    stop = (
        outcome["stop"]
        or (pod.finished if pod else None)
        or (job.completion if job else None)
        or obs.now
    )
    exit_code = outcome["exitCode"]
    if exit_code is _NO_SUMMARY:  # the runner said nothing: the container's code is all there is
        exit_code = pod.exit_code if pod else None
    record = AttemptRecord(
        attempt=status.attempt,
        job=status.job or "",
        exitCode=exit_code,
        reason=reason,
        message=message[:1024],
        start=start,
        stop=stop,
    )
    status.history = [*status.history, record][-settings.history_limit :]
    status.start, status.stop = start, stop
    status.results = outcome["results"]
    status.resultsTruncated = outcome["resultsTruncated"]
    status.resultsBytes = outcome["resultsBytes"]
    status.products, status.plots = outcome["products"], outcome["plots"]
    status.reason = reason
    attempts = 1 + obs.spec.retries
    if succeeded:
        status.phase = "success"
        status.message = f"attempt {status.attempt} of {attempts} succeeded"
        _succeeded(status, "True", "Completed", status.message, obs)
        return Plan(
            status=status, sync=True, events=[("Normal", "Succeeded", status.message)], wait=0
        )
    if status.attempt < attempts:
        delay = _backoff(obs.spec, settings)
        status.phase = "queued"
        status.nextAttemptAt = obs.now + delay
        status.message = (
            f"attempt {status.attempt} of {attempts} failed ({reason}: {message[:200]}); "
            f"attempt {status.attempt + 1} in {delay} s"
        )
        _succeeded(status, "Unknown", "Retrying", status.message, obs)
        return Plan(
            status=status,
            sync=True,
            events=[("Warning", "AttemptFailed", status.message)],
            wait=delay,
        )
    status.phase = "failure"
    status.message = (
        f"attempt {status.attempt} of {attempts} failed ({reason}: {message[:200]}); "
        "no attempts left"
    )
    _succeeded(status, "False", reason, status.message, obs)
    return Plan(status=status, sync=True, events=[("Warning", "Failed", status.message)], wait=0)
