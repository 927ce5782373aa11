"""Which watch events make the controller track a Work and queue a look (no cluster needed)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from workflow.controller.reconciler import Controller, Runtime
from workflow.controller.settings import OperatorSettings
from workflow.controller.tracking import FINALIZER

SYNCED = {
    "type": "BackendSynced", "status": "True", "reason": "Synced", "message": "ok",
    "lastTransitionTime": "2026-01-01T00:00:00Z",
}  # fmt: skip


def work(uid: str = "u-1", generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": uid, "namespace": "ns", "uid": uid, "generation": generation},
        "spec": {"pipeline": "p", "site": "local", "user": "u", "command": ["true"]},
        "status": status,
    }


def controller() -> Controller:
    # saw_work and saw_child make no calls: no cluster or buckets behind the runtime.
    rt = Runtime(settings=OperatorSettings(), kube=None, buckets=None)  # type: ignore[arg-type]
    return Controller(rt, workers=1)


def test_unfinished_works_are_tracked_and_queued_finished_ones_are_not():
    async def scenario():
        c = controller()
        c.saw_work(None, work("new"))
        c.saw_work("ADDED", work("running", phase="running"))
        c.saw_work(None, work("done", phase="success", conditions=[SYNCED]))
        assert set(c.works) == {"new", "running"}
        assert len(c.queue) == 2

    asyncio.run(scenario())


def test_job_and_pod_events_queue_only_tracked_works():
    async def scenario():
        c = controller()
        c.saw_work(None, work("a"))
        assert await c.queue.get() == "a"
        c.queue.done("a")
        c.saw_child("a")
        c.saw_child("unknown")
        c.saw_child(None)
        assert len(c.queue) == 1

    asyncio.run(scenario())


def test_a_deleted_work_is_forgotten():
    async def scenario():
        c = controller()
        c.saw_work(None, work("a", phase="running"))
        c.queue.later("a", 60)
        c.saw_work("DELETED", work("a", phase="running"))
        assert "a" not in c.works and c.queue.scheduled == 0

    asyncio.run(scenario())


def test_late_echoes_of_a_released_work_do_not_start_it_again_but_a_new_spec_does():
    async def scenario():
        c = controller()
        c.tombstones.bury("a", 3)
        stale = work("a", generation=3, phase="running")  # delivered after the final write
        c.saw_work("MODIFIED", stale)
        assert "a" not in c.works
        rerun = work("a", generation=4, phase="success", conditions=[SYNCED])
        rerun["spec"]["runId"] = "again"
        c.saw_work("MODIFIED", rerun)
        assert "a" in c.works

    asyncio.run(scenario())


def test_a_deleted_work_holding_the_finalizer_is_tracked_even_when_buried():
    async def scenario():
        c = controller()
        c.tombstones.bury("a", 1)
        deleting = work("a", phase="running")
        deleting["metadata"].update(
            deletionTimestamp="2026-01-01T00:00:00Z", finalizers=[FINALIZER]
        )
        c.saw_work("MODIFIED", deleting)
        assert c.works["a"].deleting and c.works["a"].finalized
        released = copy.deepcopy(deleting)
        released["metadata"]["finalizers"] = []
        c.works.clear()
        c.saw_work("MODIFIED", released)
        assert "a" not in c.works

    asyncio.run(scenario())
