"""The kopf handlers: thin glue between the cluster and the planner.

One daemon per unfinished Work is that Work's controller loop: it observes
(the Work, plus summaries of its Jobs and Pods kept in kopf indices), asks
``planning.plan`` what to do, does it, and sleeps until a Job or Pod of its
Work changes or its plan asks to look again. Only that daemon writes the
Work's status, so writes never race. A finished Work has no daemon and no
finalizer, so it can always be deleted, even with the operator gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import kopf
from pydantic import ValidationError

from workflow.controller import conditions as cond
from workflow.controller import resource
from workflow.controller.backend import Backend, BackendError
from workflow.controller.documents import buckets_document
from workflow.controller.faults import crash_point
from workflow.controller.jobs import build_job
from workflow.controller.kube import JobRefused, Kube
from workflow.controller.observing import view_job, view_pod
from workflow.controller.planning import Observed, Plan, buckets_id, job_refused, plan
from workflow.controller.resource import FINAL_PHASES, WorkSpec, WorkStatus
from workflow.controller.settings import OperatorSettings

WORKS = (resource.GROUP, resource.VERSION, resource.PLURAL)
OWNED = {resource.WORK_UID_LABEL: kopf.PRESENT}


@dataclass
class Runtime:
    """What the handlers share: settings, API facades and the per-Work wake-up events."""

    settings: OperatorSettings
    kube: Kube
    backend: Backend
    wakeups: dict[str, asyncio.Event] = field(default_factory=dict)

    def wake(self, uid: str | None) -> None:
        """Tell the daemon of Work ``uid`` that one of its Jobs or Pods changed."""
        if uid and uid in self.wakeups:
            self.wakeups[uid].set()


RUNTIME: Runtime | None = None


def runtime() -> Runtime:
    if RUNTIME is None:
        raise RuntimeError("the operator has not started: no runtime configured")
    return RUNTIME


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, logger: logging.Logger, **_: Any) -> None:
    """Tune kopf once, and connect to the cluster and to buckets."""
    global RUNTIME
    ours = OperatorSettings()
    settings.persistence.finalizer = f"{resource.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=resource.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=resource.GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.error_backoffs = [1, 2, 5, 10]
    settings.execution.max_workers = ours.api_threads
    settings.scanning.disabled = True
    # A daemon returns right after it writes a finished Work's status, but the watch
    # event of that write can arrive first. kopf then gives it only a few loop cycles
    # to exit and otherwise re-checks later through an extra "touch" PATCH of the Work.
    settings.background.instant_exit_timeout = 5.0
    RUNTIME = Runtime(
        settings=ours,
        kube=Kube(threads=ours.api_threads),
        backend=Backend(
            url=ours.buckets_url,
            token=ours.buckets_token,
            timeout=ours.buckets_timeout,
        ),
    )
    namespaces = ", ".join(ours.namespaces) or "all namespaces"
    logger.info("watching Works in %s; buckets at %s", namespaces, ours.buckets_url)


@kopf.on.cleanup()
async def shutdown(**_: Any) -> None:
    """Close connections on the way out."""
    if RUNTIME is not None:
        await RUNTIME.backend.close()
        RUNTIME.kube.close()


@kopf.on.probe(id="buckets")
async def buckets_reachable(**_: Any) -> bool:
    """Liveness detail: whether buckets answered just now."""
    return await runtime().backend.reachable()


# The index functions are coroutines so that kopf runs them on the event loop: a
# plain function would go through its thread pool on every Job and Pod event, which
# cost the operator more CPU than the function itself (profiled with 1,000 Works).
@kopf.index("batch", "v1", "jobs", labels=OWNED)
async def jobs_by_work(labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[str, Any]:
    """Summaries of the Jobs of each Work, by Work uid."""
    return {labels[resource.WORK_UID_LABEL]: view_job(dict(body))}


@kopf.index("", "v1", "pods", labels=OWNED)
async def pods_by_work(labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[str, Any]:
    """Summaries of the Pods of each Work, by Work uid."""
    return {labels[resource.WORK_UID_LABEL]: view_pod(dict(body))}


@kopf.on.event("batch", "v1", "jobs", labels=OWNED)
@kopf.on.event("", "v1", "pods", labels=OWNED)
async def child_changed(labels: kopf.Labels, **_: Any) -> None:
    """A Job or Pod of a Work changed: wake that Work's daemon."""
    if RUNTIME is not None:
        RUNTIME.wake(labels.get(resource.WORK_UID_LABEL))


def _unfinished(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    """Whether a Work needs its daemon: it is not finished, is not synced, or asks for a re-run."""
    phase = status.get("phase")
    if phase not in FINAL_PHASES:
        return True
    if status.get("runId") != spec.get("runId"):
        return True
    if spec.get("ttlSecondsAfterFinished") is not None:
        return True
    synced = [c for c in status.get("conditions", []) if c.get("type") == cond.BACKEND_SYNCED]
    return not synced or synced[0].get("status") != "True"


@kopf.daemon(*WORKS, when=_unfinished, cancellation_backoff=1.0)
async def work_daemon(
    name: str,
    namespace: str,
    uid: str,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    logger: logging.Logger,
    jobs_by_work: kopf.Index,
    pods_by_work: kopf.Index,
    **_: Any,
) -> None:
    """The controller loop of one Work."""
    rt = runtime()
    wakeup = rt.wakeups.setdefault(uid, asyncio.Event())
    loop = WorkLoop(rt, name=name, namespace=namespace, uid=uid, body=body, logger=logger)
    loop.status = WorkStatus.model_validate(dict(status))
    try:
        while not stopped:
            wakeup.clear()
            observed = loop.observe(
                meta.get("generation"), dict(spec), list(jobs_by_work.get(uid, [])),
                list(pods_by_work.get(uid, [])),
            )  # fmt: skip
            if observed is None:
                await loop.refuse(meta.get("generation"))
                return
            step = plan(observed, rt.settings)
            await loop.carry_out(step, observed)
            if step.done:
                await loop.expire(spec.get("ttlSecondsAfterFinished"), stopped)
                return
            delay = loop.next_wait(step)
            try:
                await asyncio.wait_for(wakeup.wait(), timeout=max(delay, 0.05))
            except TimeoutError:
                pass
        if stopped.reason is not None and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED:
            await loop.cancel()
    finally:
        rt.wakeups.pop(uid, None)


class WorkLoop:
    """Carries out plans for one Work and keeps its last written status."""

    def __init__(
        self, rt: Runtime, *, name: str, namespace: str, uid: str, body: kopf.Body, logger: logging.Logger
    ) -> None:
        self.rt, self.name, self.namespace, self.uid = rt, name, namespace, uid
        self.body, self.logger = body, logger
        self.status = WorkStatus()
        self.spec: WorkSpec | None = None
        self.invalid: ValidationError | None = None
        self.created: dict[int, float] = {}
        self.sync_failures = 0

    def observe(
        self, generation: int | None, spec: dict[str, Any], jobs: list[Any], pods: list[Any]
    ) -> Observed | None:
        """Build the planner's input; an invalid spec fails the Work (the apiserver missed it)."""
        try:
            self.spec = WorkSpec.model_validate(spec)
        except ValidationError as error:
            self.spec, self.invalid = None, error
            return None
        return Observed(
            name=self.name, uid=self.uid, generation=generation, spec=self.spec,
            status=self.status, jobs=jobs, pods=pods, now=time.time(),
            recently_created=self.created,
        )  # fmt: skip

    async def refuse(self, generation: int | None) -> None:
        """Fail a Work whose spec the operator cannot read, saying which field is wrong."""
        assert self.invalid is not None
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in self.invalid.errors()
        )
        kopf.warn(self.body, reason="InvalidSpec", message=problems)
        self.logger.warning("refusing the Work: %s", problems)
        status = self.status.model_copy(deep=True)
        status.phase, status.reason, status.message = "failure", "InvalidSpec", problems
        status.conditions = cond.set_condition(
            status.conditions, cond.SUCCEEDED, "False", "InvalidSpec", problems,
            now=time.time(), generation=generation,
        )  # fmt: skip
        status.conditions = cond.set_condition(
            status.conditions, cond.BACKEND_SYNCED, "True", "NotRecorded",
            "invalid Works are not recorded in buckets", now=time.time(), generation=generation,
        )  # fmt: skip
        await self.write_status(status)

    async def carry_out(self, step: Plan, observed: Observed) -> None:
        """Do what the plan says, in an order that is safe to interrupt at any point."""
        status = step.status
        assert self.spec is not None
        if step.deposit:
            await self.deposit(status, observed)
            return
        if step.delete_job:
            await self.rt.kube.delete_job(self.namespace, step.delete_job)
        if step.create_job is not None:
            manifest = build_job(
                name=self.name, namespace=self.namespace, uid=self.uid, spec=self.spec,
                document=self.document(status, attempt=step.create_job),
                attempt=step.create_job, run_id=self.spec.runId, settings=self.rt.settings,
            )  # fmt: skip
            try:
                if await self.rt.kube.create_job(manifest):
                    self.created[step.create_job] = time.time()
            except JobRefused as error:
                # The Job is built from the spec, which cannot change now: retrying cannot help.
                step.events = [("Warning", "JobRefused", str(error))]
                status = step.status = job_refused(
                    status, self.spec, str(error), now=time.time(),
                    generation=observed.generation, settings=self.rt.settings,
                )  # fmt: skip
            crash_point("after-job-create")
        if status.resultsTruncated and status.phase in FINAL_PHASES:
            await self.fetch_results(status)
        if step.sync:
            await self.sync(status, observed.generation)
            crash_point("after-sync")
        for kind, reason, message in step.events:
            kopf.event(self.body, type=kind, reason=reason, message=message)
        if status != self.status:
            if status.phase in FINAL_PHASES:
                crash_point("before-result-write")
            await self.write_status(status)
            crash_point("after-status-write")

    def document(self, status: WorkStatus, attempt: int | None = None) -> dict[str, Any]:
        """The buckets document of this Work, optionally for a given attempt."""
        assert self.spec is not None
        if attempt is not None:
            status = status.model_copy(update={"attempt": attempt, "phase": "running"})
        return buckets_document(self.spec, status)

    async def deposit(self, status: WorkStatus, observed: Observed) -> None:
        """Record the Work in buckets under its own id; a repeat is harmless."""
        assert self.spec is not None
        status = status.model_copy(deep=True)
        status.bucketsId = buckets_id(self.uid, self.spec.runId)
        status.creation = status.creation or time.time()
        status.phase = "queued"
        crash_point("before-deposit")
        try:
            await self.rt.backend.deposit(buckets_document(self.spec, status))
        except BackendError as error:
            self.sync_failures += 1
            failed = self.status.model_copy(deep=True)
            failed.message = f"waiting for buckets: {error}"
            failed.conditions = cond.set_condition(
                failed.conditions, cond.BACKEND_SYNCED, "False", "DepositFailed", str(error),
                now=time.time(), generation=observed.generation,
            )  # fmt: skip
            await self.write_status(failed)
            return
        crash_point("after-deposit")
        self.sync_failures = 0
        status.reason, status.message = "Deposited", f"recorded in buckets as {status.bucketsId}"
        status.conditions = cond.set_condition(
            status.conditions, cond.BACKEND_SYNCED, "True", "Deposited", status.message,
            now=time.time(), generation=observed.generation,
        )  # fmt: skip
        # The status is written together with the first Job's creation, in the next step.
        self.status = status

    async def sync(self, status: WorkStatus, generation: int | None) -> None:
        """Write the Work's state to buckets; on failure say so and try again later."""
        ended = any(record.attempt == status.attempt for record in status.history)
        try:
            written = await self.rt.backend.update(self.document(status), attempt_ended=ended)
        except BackendError as error:
            self.sync_failures += 1
            self.logger.warning("buckets update failed (%s); will retry", error)
            status.conditions = cond.set_condition(
                status.conditions, cond.BACKEND_SYNCED, "False", "UpdateFailed", str(error),
                now=time.time(), generation=generation,
            )  # fmt: skip
            return
        self.sync_failures = 0
        message = (
            f"buckets holds phase {status.phase} of attempt {status.attempt}"
            if written
            else f"buckets holds the outcome the runner recorded for attempt {status.attempt}"
        )
        status.conditions = cond.set_condition(
            status.conditions, cond.BACKEND_SYNCED, "True", "Synced", message,
            now=time.time(), generation=generation,
        )  # fmt: skip

    async def fetch_results(self, status: WorkStatus) -> None:
        """Results too large for the termination message: read them from buckets if they fit."""
        if status.bucketsId is None:
            return
        try:
            results = await self.rt.backend.results(status.bucketsId)
        except BackendError:
            return
        from workflow.definitions.work import json_size

        if isinstance(results, dict) and json_size(results) <= self.rt.settings.results_cap_bytes:
            status.results, status.resultsTruncated, status.resultsBytes = results, None, None

    async def write_status(self, status: WorkStatus) -> None:
        await self.rt.kube.patch_status(self.namespace, self.name, status.model_dump(mode="json"))
        self.status = status

    def next_wait(self, step: Plan) -> float:
        """Seconds until the next look; buckets retries back off exponentially."""
        synced = cond.get_condition(self.status.conditions, cond.BACKEND_SYNCED)
        if synced is not None and synced.status == "False":
            backoff = min(2.0 ** self.sync_failures, self.rt.settings.sync_backoff_max_seconds)
            return backoff if step.wait is None else min(step.wait, backoff)
        return self.rt.settings.resync_seconds if step.wait is None else step.wait

    async def expire(self, ttl: int | None, stopped: kopf.DaemonStopped) -> None:
        """Delete the finished Work once its ttlSecondsAfterFinished has passed."""
        if ttl is None or self.status.stop is None:
            return
        remaining = self.status.stop + ttl - time.time()
        if remaining > 0:
            await stopped.wait(remaining)
        if not stopped:
            await self.rt.kube.delete_work(self.namespace, self.name)

    async def cancel(self) -> None:
        """The Work is being deleted: stop its Job and mark its buckets record."""
        if self.status.phase in FINAL_PHASES or self.spec is None:
            return
        if self.status.job:
            await self.rt.kube.delete_job(self.namespace, self.status.job)
        if self.status.bucketsId is None:
            return
        status = self.status.model_copy(
            update={"phase": "failure", "stop": time.time(), "reason": "Deleted"}
        )
        try:
            await self.rt.backend.update(self.document(status))
        except BackendError as error:
            self.logger.warning("could not mark the deleted Work in buckets: %s", error)
