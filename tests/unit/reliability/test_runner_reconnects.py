"""A runner that found buckets away when it started still records the outcome at the end.

Found by the reliability suite: a Work pod started during a buckets outage
never tried buckets again, so results too large for the termination message
were lost even though buckets was back long before the Work ended.
"""

from __future__ import annotations

import json

import httpx

from workflow.definitions.work import WorkDocument
from workflow.http import Buckets
from workflow.runner.lifecycle import attempt


def test_the_outcome_is_recorded_through_a_connection_made_after_the_work_ran() -> None:
    sent: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.extend(json.loads(request.content))
        return httpx.Response(200, json=True)

    connects: list[str] = []

    def reconnect() -> Buckets:
        connects.append("now")
        return Buckets(baseurl="http://buckets.test", transport=httpx.MockTransport(handler))

    work = WorkDocument(
        pipeline="p", site="s", user="u", id="w1", status="running", attempt=1,
        command=["python3", "-c", "print('x' * 10)"],
    )  # fmt: skip
    done = attempt(work, buckets=None, reconnect=reconnect)
    assert connects == ["now"], "reconnected once, after the Work ran"
    assert done.recorded is True and done.summary["recorded"] is True
    assert [(doc["id"], doc["status"]) for doc in sent] == [("w1", "success")]


def test_buckets_still_away_at_the_end_leaves_the_outcome_unrecorded() -> None:
    work = WorkDocument(
        pipeline="p", site="s", user="u", id="w1", status="running", command=["true"]
    )
    done = attempt(work, buckets=None, reconnect=lambda: None)
    assert done.recorded is None and done.outcome.succeeded
