"""The buckets record of a Work resource, built from its spec and status."""

from __future__ import annotations

from typing import Any

from workflow.controller.resource import WorkSpec, WorkStatus
from workflow.definitions.work import WorkDocument, WorkFields

_REQUEST_FIELDS = tuple(WorkFields.model_fields)


def buckets_document(spec: WorkSpec, status: WorkStatus) -> dict[str, Any]:
    """The document buckets should hold for this Work.

    Results are left out when the resource only holds a truncated copy, so
    that the full results the runner sent to buckets are not overwritten.
    """
    request = spec.model_dump(mode="json", include=set(_REQUEST_FIELDS))
    document = WorkDocument.model_validate(
        {
            **request,
            "id": status.bucketsId,
            "status": status.phase,
            "attempt": status.attempt,
            "creation": status.creation,
            "start": status.start,
            "stop": status.stop,
            "products": status.products,
            "plots": status.plots,
            "results": status.results,
        }
    ).model_dump(mode="json")
    if status.resultsTruncated:
        document.pop("results")
    return document


#: What the runner records in buckets whole, and the operator may see only in part.
OUTPUTS = ("results", "products", "plots")
_FINAL = ("success", "failure")


def merge_outcome(
    document: dict[str, Any], stored: dict[str, Any] | None, *, attempt_ended: bool
) -> dict[str, Any] | None:
    """What to write over the ``stored`` record, or None when writing would undo newer news.

    The runner records the outcome of its attempt in buckets itself, whole;
    the operator knows it only from the pod's termination message, which
    leaves out what does not fit in 4 KiB. So:

    - a document written before the operator saw the attempt end (queued or
      running, ``attempt_ended`` false) is not written over the outcome of
      that same attempt: it would turn a finished attempt back into a running
      one and drop its outputs (the operator's own record of the end follows);
    - results the document leaves out (the resource keeps a truncated copy)
      keep the stored ones, and outputs the document lacks come from the
      stored outcome of the same attempt.
    """
    outcome = (
        stored is not None
        and stored.get("attempt") == document.get("attempt")
        and stored.get("status") in _FINAL
    )
    if outcome and not attempt_ended:
        return None
    merged = dict(document)
    if "results" not in merged:
        merged["results"] = (stored or {}).get("results")
    if outcome:
        assert stored is not None
        for key in OUTPUTS:
            if merged.get(key) is None and stored.get(key) is not None:
                merged[key] = stored[key]
    return merged
