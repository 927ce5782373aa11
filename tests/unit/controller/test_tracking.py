"""Which Works the controller tracks, what it keeps of them, and its tombstones."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from workflow.controller.resource import WorkStatus
from workflow.controller.tracking import FINALIZER, Tombstones, Tracked, needs_looking

SYNCED = {"type": "BackendSynced", "status": "True", "reason": "Synced", "message": "ok"}


def work(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "w", "namespace": "ns", "uid": "u-1", "generation": 1,
            "resourceVersion": "10",
        },
        "spec": {"pipeline": "p", "site": "local", "user": "u", "command": ["true"]},
        "status": status,
    }  # fmt: skip


FINISHED = {"phase": "success", "conditions": [SYNCED]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (work(), True),  # new
        (work(phase="running"), True),
        (work(**FINISHED), False),  # finished and recorded: nothing to do
        (work(phase="failure", conditions=[{**SYNCED, "status": "False"}]), True),  # unsynced
        (work(phase="success"), True),  # never synced
    ],
)
def test_needs_looking(body, expected):
    assert needs_looking(body) is expected


def test_a_finished_work_needs_looking_for_a_rerun_a_ttl_or_to_drop_its_finalizer():
    rerun = work(**FINISHED)
    rerun["spec"]["runId"] = "again"
    ttl = work(**FINISHED)
    ttl["spec"]["ttlSecondsAfterFinished"] = 60
    held = work(**FINISHED)
    held["metadata"]["finalizers"] = [FINALIZER]
    assert needs_looking(rerun) and needs_looking(ttl) and needs_looking(held)


def test_a_deleted_work_needs_looking_only_while_it_holds_the_finalizer():
    deleting = work(phase="running")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not needs_looking(deleting)
    deleting["metadata"]["finalizers"] = ["other/finalizer", FINALIZER]
    assert needs_looking(deleting)


def test_the_record_keeps_the_spec_of_new_events_but_its_own_status():
    body = work(phase="running", attempt=1)
    tracked = Tracked.of(body)
    assert WorkStatus.model_validate_json(tracked.status).phase == "running"
    newer = copy.deepcopy(body)
    newer["metadata"].update(generation=2, resourceVersion="12", finalizers=[FINALIZER])
    newer["spec"]["timeout"] = 5
    newer["status"] = {"phase": "queued"}  # an echo of an older write: not taken
    tracked.refresh(newer)
    assert b'"timeout":5' in tracked.spec
    assert WorkStatus.model_validate_json(tracked.status).phase == "running"
    assert (tracked.generation, tracked.version, tracked.finalized) == (2, "12", True)
    older = copy.deepcopy(body)  # generations never go back
    tracked.refresh(older)
    assert tracked.generation == 2
    assert tracked.reference() == {
        "apiVersion": "workflow.dev/v1alpha1", "kind": "Work", "name": "w", "namespace": "ns",
        "uid": "u-1",
    }  # fmt: skip


def test_tombstones_cover_the_generation_they_were_buried_with_until_they_expire(monkeypatch):
    graves = Tombstones(keep=60)
    graves.bury("u-1", 3)
    assert graves.covers("u-1", 3)
    assert not graves.covers("u-1", 4), "a newer spec (a re-run) is not an echo"
    assert not graves.covers("u-2", 3)
    later = time.monotonic() + 61
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert not graves.covers("u-1", 3)
    assert not graves._items, "expired tombstones are dropped"
