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
