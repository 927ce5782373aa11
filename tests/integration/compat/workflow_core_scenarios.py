"""Scenarios run with the PUBLIC ``workflow-core`` client, in its own virtualenv.

This file is not a test module: ``test_workflow_core.py`` runs it with the
other virtualenv's Python as ``python workflow_core_scenarios.py NAME
PIPELINE``. Its ``import workflow`` is therefore the public package, never
ours. Each scenario prints one JSON line with what it observed; the tests
make the assertions.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

warnings.simplefilter("ignore")  # the public client warns when it has no token

from workflow.definitions.work import Work  # noqa: E402 - the public client
from workflow.http.context import HTTPContext  # noqa: E402


def new(pipeline: str, **fields: Any) -> Work:
    values = {"pipeline": pipeline, "site": "local", "user": "compat", "command": ["true"]}
    return Work(**{**values, **fields})


def deposit(pipeline: str) -> dict[str, Any]:
    ids = new(pipeline).deposit(return_ids=True)
    plain = new(pipeline).deposit(return_ids=False)
    http = HTTPContext()
    several = http.buckets.deposit([new(pipeline).payload, new(pipeline).payload], return_ids=True)
    stored = http.buckets.view({"id": ids[0]}, {})
    return {"ids": ids, "plain": plain, "several": several, "stored": stored}


def withdraw_order(pipeline: str) -> dict[str, Any]:
    for priority in (2, 5, 3):
        new(pipeline, priority=priority).deposit()
    taken = []
    for _ in range(4):
        work = Work.withdraw(pipeline=pipeline)
        taken.append(None if work is None else work.payload)
    return {"taken": taken}


def withdraw_filters(pipeline: str) -> dict[str, Any]:
    new(pipeline, tags=["a"], user="ann", priority=1).deposit()
    new(pipeline, tags=["b"], event=[7], config={"parent": "mother"}, priority=2).deposit()
    new(pipeline, tags=["c"], site="testing", priority=1).deposit()
    by_tag = Work.withdraw(pipeline=pipeline, tags=["b"])
    by_site = Work.withdraw(pipeline=pipeline, site="testing")
    by_user = Work.withdraw(pipeline=[pipeline, "other-pipeline"], user="ann")
    new(pipeline, event=[7, 8], config={"parent": "father"}).deposit()
    by_event_parent = Work.withdraw(pipeline=pipeline, event=[8], parent=["father"])
    return {
        "by_tag": by_tag and by_tag.payload,
        "by_site": by_site and by_site.payload,
        "by_user": by_user and by_user.payload,
        "by_event_parent": by_event_parent and by_event_parent.payload,
    }


def update(pipeline: str) -> dict[str, Any]:
    new(pipeline).deposit()
    work = Work.withdraw(pipeline=pipeline)
    work.status = "success"
    work.results = {"answer": 42}
    work.products = ["/data/answer.txt"]
    work.stop = work.start + 1.5
    updated = work.update()
    stored = HTTPContext().buckets.view({"id": work.id}, {})[0]
    return {"updated": updated, "stored": stored, "start": work.start}


def view_and_status(pipeline: str) -> dict[str, Any]:
    for tags in (["x"], ["y"], ["x", "y"]):
        new(pipeline, tags=tags).deposit()
    buckets = HTTPContext().buckets
    return {
        "projected": buckets.view({"pipeline": pipeline, "tags": "x"}, {"id": True, "tags": True}),
        "paged": [
            [
                w["id"]
                for w in buckets.view({"pipeline": pipeline}, {"id": True}, skip=skip, limit=2)
            ]
            for skip in (0, 2)
        ],
        "details": buckets.status(pipeline=pipeline),
        "overall": buckets.status(),
        "pipelines": buckets.pipelines(),
        "info": buckets.info()["server"],
    }


def delete(pipeline: str) -> dict[str, Any]:
    work = new(pipeline)
    [work.id] = work.deposit(return_ids=True)
    deleted_one = work.delete()
    buckets = HTTPContext().buckets
    ids = [new(pipeline, tags=["old"]).deposit(return_ids=True)[0] for _ in range(3)]
    kept = new(pipeline, tags=["new"]).deposit(return_ids=True)[0]
    by_ids = buckets.delete_ids(ids[:1])
    many = buckets.delete_many(pipeline=pipeline, tags=["old"], force=True)
    left = [w["id"] for w in buckets.view({"pipeline": pipeline}, {"id": True})]
    nothing = buckets.delete_many(pipeline=pipeline, tags=["old"], force=True)
    everything = buckets.delete_many(pipeline=pipeline, force=True)
    return {
        "deleted_one": deleted_one,
        "by_ids": by_ids,
        "many": many,
        "left": left,
        "kept": kept,
        "nothing": nothing,
        "everything": everything,
        "total": buckets.status(pipeline=pipeline)["total"],
    }


def audit(pipeline: str) -> dict[str, Any]:
    buckets = HTTPContext().buckets
    quiet = buckets.audit()
    new(pipeline, retries=2).deposit()
    work = Work.withdraw(pipeline=pipeline)
    work.status = "failure"
    work.update()
    counts = buckets.audit()
    requeued = buckets.view({"id": work.id}, {"status": True, "attempt": True})[0]
    return {"quiet": quiet, "counts": counts, "requeued": requeued}


def one(work_id: str) -> dict[str, Any]:
    """What the public client shows of one work (the argument is its id, not a pipeline)."""
    [work] = HTTPContext().buckets.view({"id": work_id}, {})
    return work


SCENARIOS = {
    "one": one,
    "deposit": deposit,
    "withdraw_order": withdraw_order,
    "withdraw_filters": withdraw_filters,
    "update": update,
    "view_and_status": view_and_status,
    "delete": delete,
    "audit": audit,
}

if __name__ == "__main__":
    name, pipeline = sys.argv[1], sys.argv[2]
    print(json.dumps(SCENARIOS[name](pipeline)))
