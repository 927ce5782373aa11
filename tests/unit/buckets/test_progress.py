"""How far a work's record is (``stores.base.progress``): what a guarded update compares."""

from __future__ import annotations

import pytest

from workflow.buckets.stores.base import StaleWorksError, progress, stale_works


@pytest.mark.parametrize(
    ("attempt", "status", "stop", "expected"),
    [
        (0, "queued", None, (0, 0)),
        (1, "running", None, (1, 1)),
        (1, "success", 10.0, (1, 2)),
        (1, "failure", None, (1, 2)),
        (1, "queued", 10.0, (1, 2)),  # the operator's record of a failed attempt, retry pending
        (None, "created", None, (0, 0)),
    ],
)
def test_progress_is_the_attempt_then_its_stage(attempt, status, stop, expected) -> None:
    assert progress(attempt, status, stop) == expected


def test_only_records_further_along_than_the_document_are_stale() -> None:
    documents = {
        "late-start": {"attempt": 1, "status": "running", "stop": None},
        "old-attempt": {"attempt": 1, "status": "failure", "stop": 5.0},
        "in-order": {"attempt": 2, "status": "running", "stop": None},
        "same": {"attempt": 2, "status": "success", "stop": 9.0},
    }
    stored = {"late-start": (1, 2), "old-attempt": (2, 1), "in-order": (1, 2), "same": (2, 2)}
    stale = stale_works(documents, stored)
    assert [work_id for work_id, _, _ in stale] == ["late-start", "old-attempt"]
    message = str(StaleWorksError(stale))
    assert message.startswith("attempt: work 'late-start' holds attempt 1 ended, newer than ")
    assert "the attempt 1 running sent" in message and "nothing was updated" in message
