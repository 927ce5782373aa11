"""The controller: a queue of Works, a few workers, and one look at a Work at a time.

kopf delivers watch events (handlers.py); the controller keeps a small
record of each Work that needs it (tracking.py) and puts its uid on a queue
(queue.py). A worker takes the uid and looks once: it observes the Work and
the summaries of its Jobs and Pods (kopf indices), asks ``planning.plan``
what to do, does it, and sets a timer for the next look if the plan asks
for one. A Work that waits costs a timer and a record of a few hundred
bytes, never a task, so tens of thousands of Works fit in a small operator.

Only the worker holding a uid writes that Work's status, and the queue never
hands a uid to two workers at once, so writes never race. A finished Work is
let go of (its finalizer removed), so it can always be deleted, even with
the operator gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from workflow.controller import conditions as cond
from workflow.controller import tokens
from workflow.controller.buckets_sync import BucketsSync, BucketsSyncError
from workflow.controller.faults import crash_point
from workflow.controller.jobs import build_job
from workflow.controller.kube import JobRefused, JobTaken, Kube, api_error_line
from workflow.controller.planning import Observed, Plan, buckets_id, job_refused, plan
from workflow.controller.queue import WorkQueue
from workflow.controller.records import buckets_document
from workflow.controller.resource import FINAL_PHASES, WorkSpec, WorkStatus
from workflow.controller.settings import OperatorSettings
from workflow.controller.tracking import FINALIZER, Tombstones, Tracked, needs_looking
from workflow.definitions.work import json_size

log = logging.getLogger("workflow.controller")

#: Seconds between looks while another's Job holds the name of the next attempt's Job.
NAME_TAKEN_WAIT = 2.0
#: Seconds before a look that raised is tried again: the n-th failure in a row waits the
#: n-th value, and every failure after the last one waits the last.
ERROR_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Runtime:
    """What the controller talks to."""

    settings: OperatorSettings
    kube: Kube
    buckets: BucketsSync


class Controller:
    """Tracks the Works that need looking at, and looks at them with a few workers."""

    def __init__(self, rt: Runtime, *, workers: int) -> None:
        self.rt = rt
        self.queue = WorkQueue()
        self.works: dict[str, Tracked] = {}
        self.tombstones = Tombstones()
        self.workers = workers
        #: Summaries of the Jobs and Pods of each Work, by Work uid (kopf indices).
        self.jobs: Mapping[str, Any] = {}
        self.pods: Mapping[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._posting: set[asyncio.Task[None]] = set()
        self._posts = asyncio.Semaphore(16)

    # --- input: watch events --------------------------------------------------------------

    def saw_work(self, event: str | None, body: dict[str, Any]) -> None:
        """A Work was listed, added, changed or deleted: track it, and queue a look if needed."""
        meta = body["metadata"]
        uid = meta["uid"]
        if event == "DELETED":
            self._drop(uid)
            self.tombstones.remove(uid)
            return
        tracked = self.works.get(uid)
        if tracked is not None:
            tracked.refresh(body)
        else:
            deleting = bool(meta.get("deletionTimestamp"))
            if not deleting and self.tombstones.covers(uid, meta.get("generation")):
                return  # an echo of writes made before this controller let the Work go
            if not needs_looking(body):
                return
            try:
                tracked = Tracked.of(body)
            except ValidationError as error:
                log.warning("Work %s/%s has an unreadable status: %s", meta.get("namespace"),
                            meta.get("name"), error)  # fmt: skip
                return
            self.works[uid] = tracked
        self.queue.add(uid)

    def saw_child(self, uid: str | None) -> None:
        """A Job or Pod of Work ``uid`` changed: look at the Work again."""
        if uid and uid in self.works:
            self.queue.add(uid)

    # --- the workers ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the timers and the workers on the running loop."""
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.queue.run_timers(), name="work timers"))
        for number in range(self.workers):
            self._tasks.append(loop.create_task(self._work(), name=f"work look {number}"))

    async def stop(self) -> None:
        """Cancel the workers (a look cut short is repeated by the next operator)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._posting, return_exceptions=True)
        self._tasks.clear()

    async def _work(self) -> None:
        while True:
            uid = await self.queue.get()
            try:
                await self.look(uid)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._failed(uid, error)
            finally:
                self.queue.done(uid)

    def _failed(self, uid: str, error: Exception) -> None:
        tracked = self.works.get(uid)
        if tracked is None:
            return
        delay = ERROR_BACKOFF[min(tracked.errors, len(ERROR_BACKOFF) - 1)]
        tracked.errors += 1
        text = (
            api_error_line(error)
            if isinstance(error, ApiException)
            else f"{type(error).__name__}: {error}"
        )
        log.error(
            "Work %s/%s: look failed (%s); trying again in %.0f s",
            tracked.namespace, tracked.name, text, delay,
            exc_info=not isinstance(error, (ApiException, BucketsSyncError)),
        )  # fmt: skip
        self.queue.later(uid, delay)

    async def look(self, uid: str) -> None:
        """Look at Work ``uid`` once and carry out what the plan decides."""
        tracked = self.works.get(uid)
        if tracked is None:
            return
        looking = Look(self, tracked)
        if tracked.deleting:
            if tracked.finalized:
                await looking.cancel()
                await self._release(tracked)
            self._drop(uid)
            return
        if looking.spec is None:
            await looking.refuse()
            await self._let_go(tracked)
            return
        unblocked = not tracked.finalized and looking.status.phase not in FINAL_PHASES
        if unblocked and not await self._block_deletion(tracked):
            self.queue.later(uid, 1.0)
            return
        observed = looking.observe(list(self.jobs.get(uid, [])), list(self.pods.get(uid, [])))
        decided = plan(observed, self.rt.settings)
        await looking.carry_out(decided, observed)
        tracked.errors = 0
        if not decided.done:
            self.queue.later(uid, looking.next_wait(decided))
            return
        ttl = looking.spec.ttlSecondsAfterFinished
        if ttl is not None and looking.status.stop is not None:
            remaining = looking.status.stop + ttl - time.time()
            if remaining > 0:
                if tracked.finalized:
                    await self._release(tracked)
                self.queue.later(uid, remaining)
                return
            await self.rt.kube.delete_work(tracked.namespace, tracked.name)
        await self._let_go(tracked)

    # --- finalizer and forgetting ---------------------------------------------------------

    async def _block_deletion(self, tracked: Tracked) -> bool:
        """Add the finalizer, so a deleted Work's Job is stopped and buckets told.

        The patch holds only if the Work is still the version last seen, so it never
        drops another controller's finalizer nor adds ours twice; False if it changed
        (its watch event will bring the new version and another look).
        """
        if tracked.finalizers:
            add: dict[str, Any] = {
                "op": "add",
                "path": "/metadata/finalizers/-",
                "value": FINALIZER,
            }
        else:
            add = {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}
        same = {"op": "test", "path": "/metadata/resourceVersion", "value": tracked.version}
        try:
            await self.rt.kube.patch_work(tracked.namespace, tracked.name, [same, add])
        except ApiException as error:
            if error.status in (409, 422):
                return False
            raise
        tracked.finalizers = (*tracked.finalizers, FINALIZER)
        return True

    async def _release(self, tracked: Tracked) -> None:
        """Remove the finalizer (only if it is still where it was seen)."""
        if not tracked.finalized:
            return
        index = tracked.finalizers.index(FINALIZER)
        path = f"/metadata/finalizers/{index}"
        operations = [
            {"op": "test", "path": path, "value": FINALIZER},
            {"op": "remove", "path": path},
        ]
        try:
            await self.rt.kube.patch_work(tracked.namespace, tracked.name, operations)
        except ApiException as error:
            if error.status != 404:
                raise
        tracked.finalizers = tuple(f for f in tracked.finalizers if f != FINALIZER)

    async def _let_go(self, tracked: Tracked) -> None:
        """A finished Work needs nothing more: release it and forget it."""
        await self._release(tracked)
        self.tombstones.bury(tracked.uid, tracked.generation)
        self._drop(tracked.uid)

    def _drop(self, uid: str) -> None:
        self.works.pop(uid, None)
        self.queue.forget(uid)

    # --- Events ---------------------------------------------------------------------------

    def post(self, tracked: Tracked, kind: str, reason: str, message: str) -> None:
        """Post an Event about the Work in the background (a lost Event loses no state)."""

        async def post() -> None:
            async with self._posts:
                try:
                    await self.rt.kube.post_event(tracked.reference(), kind, reason, message)
                except Exception as error:  # Events are best effort
                    shown = api_error_line(error) if isinstance(error, ApiException) else error
                    log.warning("could not post Event %s for Work %s/%s: %s",
                                reason, tracked.namespace, tracked.name, shown)  # fmt: skip

        task = asyncio.get_running_loop().create_task(post())
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)


class Look:
    """One look at one Work: its spec and status read from the record, the plan carried out."""

    def __init__(self, controller: Controller, tracked: Tracked) -> None:
        self.controller, self.rt, self.tracked = controller, controller.rt, tracked
        self.status = WorkStatus.model_validate_json(tracked.status)
        self.invalid: ValidationError | None = None
        try:
            self.spec: WorkSpec | None = WorkSpec.model_validate_json(tracked.spec)
        except ValidationError as error:
            self.spec, self.invalid = None, error

    @property
    def name(self) -> str:
        return self.tracked.name

    @property
    def namespace(self) -> str:
        return self.tracked.namespace

    def log(self, level: int, message: str, *args: Any) -> None:
        log.log(level, "Work %s/%s: " + message, self.namespace, self.name, *args)

    def observe(self, jobs: list[Any], pods: list[Any]) -> Observed:
        """The planner's input."""
        assert self.spec is not None
        return Observed(
            name=self.name, uid=self.tracked.uid, generation=self.tracked.generation,
            spec=self.spec, status=self.status, jobs=jobs, pods=pods, now=time.time(),
            recently_created=self.tracked.created,
        )  # fmt: skip

    async def refuse(self) -> None:
        """Fail a Work whose spec the operator cannot read, saying which field is wrong."""
        assert self.invalid is not None
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in self.invalid.errors()
        )
        if self.status.phase == "failure" and self.status.reason == "InvalidSpec":
            return
        self.controller.post(self.tracked, "Warning", "InvalidSpec", problems)
        self.log(logging.WARNING, "refusing the Work: %s", problems)
        status = self.status.model_copy(deep=True)
        status.phase, status.reason, status.message = "failure", "InvalidSpec", problems
        generation = self.tracked.generation
        status.conditions = cond.set_condition(
            status.conditions, cond.SUCCEEDED, "False", "InvalidSpec", problems,
            now=time.time(), generation=generation,
        )  # fmt: skip
        status.conditions = cond.set_condition(
            status.conditions, cond.BACKEND_SYNCED, "True", "NotRecorded",
            "invalid Works are not recorded in buckets", now=time.time(), generation=generation,
        )  # fmt: skip
        await self.write_status(status)

    async def carry_out(self, decided: Plan, observed: Observed) -> None:
        """Do what the plan says, in an order that is safe to interrupt at any point."""
        status = decided.status
        assert self.spec is not None
        if decided.deposit:
            await self.deposit(status, observed)
            return
        if decided.delete_job:
            await self.rt.kube.delete_job(self.namespace, decided.delete_job)
        if decided.create_job is not None:
            token_secret = await self.write_token(status, decided.create_job)
            manifest = build_job(
                name=self.name, namespace=self.namespace, uid=self.tracked.uid, spec=self.spec,
                document=self.document(status, attempt=decided.create_job),
                attempt=decided.create_job, run_id=self.spec.runId, settings=self.rt.settings,
                token_secret=token_secret,
            )  # fmt: skip
            try:
                if await self.rt.kube.create_job(manifest):
                    self.tracked.created[decided.create_job] = time.time()
            except JobRefused as error:
                # The Job is built from the spec, which cannot change now: retrying cannot help.
                decided.events, decided.sync = [("Warning", "JobRefused", str(error))], True
                status = decided.status = job_refused(
                    status, self.spec, str(error), now=time.time(),
                    generation=observed.generation, settings=self.rt.settings,
                )  # fmt: skip
            except JobTaken as error:
                # Another Work's Job (one deleted under this name, its Job not yet
                # collected) holds the name: wait for it to go, never adopt it.
                status = decided.status = self.name_taken(str(error), decided)
            crash_point("after-job-create")
        if status.resultsTruncated and status.phase in FINAL_PHASES:
            await self.fetch_results(status)
        if decided.sync:
            await self.sync(status, observed.generation)
            crash_point("after-sync")
        for kind, reason, message in decided.events:
            self.controller.post(self.tracked, kind, reason, message)
        if status != self.status:
            if status.phase in FINAL_PHASES:
                crash_point("before-result-write")
                self.tracked.created.clear()
            await self.write_status(status)
            crash_point("after-status-write")

    async def write_token(self, status: WorkStatus, attempt: int) -> str | None:
        """Mint the attempt's buckets token into its Secret; the Secret's name, or None.

        None when the operator mints no tokens (no signing key) or the Work
        names its own (``spec.tokenSecretRef``). A Secret left by an earlier
        try of this start (a crash before the Job) is replaced.
        """
        assert self.spec is not None
        if not tokens.minting(self.spec, self.rt.settings):
            return None
        record = status.bucketsId or buckets_id(self.tracked.uid, self.spec.runId)
        secret = tokens.token_secret(
            name=self.name, namespace=self.namespace, uid=self.tracked.uid, spec=self.spec,
            record=record, attempt=attempt, settings=self.rt.settings,
        )  # fmt: skip
        await self.rt.kube.put_secret(secret)
        return str(secret["metadata"]["name"])

    def name_taken(self, problem: str, decided: Plan) -> WorkStatus:
        """The status while the next attempt's Job name is held by another's Job.

        The attempt is not started: the status stays as it was (the attempt
        before, or none), says why it waits, and the Work is looked at again
        shortly. The Event is posted once, when the wait begins.
        """
        status = self.status.model_copy(deep=True)
        status.reason = "JobNameTaken"
        status.message = f"waiting to start the next attempt: {problem}; it is not adopted"
        decided.events = (
            [] if self.status.reason == "JobNameTaken" else [("Warning", "JobNameTaken", problem)]
        )
        decided.wait = NAME_TAKEN_WAIT
        return status

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
        status.bucketsId = buckets_id(self.tracked.uid, self.spec.runId)
        status.creation = status.creation or time.time()
        status.phase = "queued"
        crash_point("before-deposit")
        try:
            await self.rt.buckets.deposit(buckets_document(self.spec, status))
        except BucketsSyncError as error:
            self.tracked.sync_failures += 1
            failed = self.status.model_copy(deep=True)
            failed.message = f"waiting for buckets: {error}"
            failed.conditions = cond.set_condition(
                failed.conditions, cond.BACKEND_SYNCED, "False", "DepositFailed", str(error),
                now=time.time(), generation=observed.generation,
            )  # fmt: skip
            await self.write_status(failed)
            return
        crash_point("after-deposit")
        self.tracked.sync_failures = 0
        status.reason, status.message = "Deposited", f"recorded in buckets as {status.bucketsId}"
        status.conditions = cond.set_condition(
            status.conditions, cond.BACKEND_SYNCED, "True", "Deposited", status.message,
            now=time.time(), generation=observed.generation,
        )  # fmt: skip
        # The status is written together with the first Job's creation, in the next look.
        self.keep(status)

    async def sync(self, status: WorkStatus, generation: int | None) -> None:
        """Write the Work's state to buckets; on failure say so and try again later."""
        ended = any(record.attempt == status.attempt for record in status.history)
        try:
            written = await self.rt.buckets.update(self.document(status), attempt_ended=ended)
        except BucketsSyncError as error:
            self.tracked.sync_failures += 1
            self.log(logging.WARNING, "buckets update failed (%s); will retry", error)
            status.conditions = cond.set_condition(
                status.conditions, cond.BACKEND_SYNCED, "False", "UpdateFailed", str(error),
                now=time.time(), generation=generation,
            )  # fmt: skip
            return
        self.tracked.sync_failures = 0
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
            results = await self.rt.buckets.results(status.bucketsId)
        except BucketsSyncError:
            return
        if isinstance(results, dict) and json_size(results) <= self.rt.settings.results_cap_bytes:
            status.results, status.resultsTruncated, status.resultsBytes = results, None, None

    async def write_status(self, status: WorkStatus) -> None:
        meta = await self.rt.kube.patch_status(
            self.namespace, self.name, status.model_dump(mode="json")
        )
        self.tracked.saw_write(meta)
        self.keep(status)

    def keep(self, status: WorkStatus) -> None:
        """Remember ``status`` as the Work's own, for this look and the next."""
        self.status = status
        self.tracked.status = status.model_dump_json().encode()

    def next_wait(self, decided: Plan) -> float:
        """Seconds until the next look; buckets retries back off exponentially."""
        synced = cond.get_condition(self.status.conditions, cond.BACKEND_SYNCED)
        if synced is not None and synced.status == "False":
            most = self.rt.settings.sync_backoff_max_seconds
            backoff = min(2.0**self.tracked.sync_failures, most)
            return backoff if decided.wait is None else min(decided.wait, backoff)
        return self.rt.settings.resync_seconds if decided.wait is None else decided.wait

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
            await self.rt.buckets.update(self.document(status))
        except BucketsSyncError as error:
            self.log(logging.WARNING, "could not mark the deleted Work in buckets: %s", error)
