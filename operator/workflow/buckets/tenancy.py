"""Which works a token may touch: its own record (a work token) or its pipelines.

Scopes say *what* a token may do (read, write); this module says *to which
works*, for the two kinds of limited token (``auth.Grant``):

* a **work token** (minted by the operator for one attempt of one Work) may
  read its own record (``GET /work/{id}``, ``POST /view`` naming its id) and
  update it (``PUT /work``, for its own attempt). Every other route refuses
  it before it runs (``app._guard``), so it cannot deposit, withdraw, delete,
  count or audit, nor see or change any other record.
* a token limited to **pipelines** (buckets' token configuration) deposits,
  withdraws, reads, updates and deletes works of those pipelines only; a view
  or a count without a pipeline is narrowed to them.

Every refusal is a 403 that names the field and the rule, and the token by
its name, never its value. Unlimited tokens pass through untouched, at no cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from workflow.buckets.auth import Grant
from workflow.buckets.bodies import BodyError, describe

#: What every route a work token may not use answers.
RECORD_ONLY = (
    "a work token may only read (GET /work/<its id>, POST /view with query.id its id) "
    "and update (PUT /work) its own Work's record"
)

#: Looks up the pipelines of stored works by id (unknown ids are left out).
PipelinesOf = Callable[[Sequence[str]], Awaitable[dict[str, str]]]


def refuse(message: str) -> BodyError:
    return BodyError(message, 403)


def _limited(grant: Grant) -> str:
    assert grant.pipelines is not None
    return f"{grant.name} may only use pipelines {', '.join(sorted(grant.pipelines))}"


def _requested_pipelines(field: str, value: Any) -> list[str]:
    """The pipelines a filter's ``pipeline`` asks for: a name or ``{"$in": [names]}``."""
    if isinstance(value, str):
        return [value]
    if (
        isinstance(value, dict)
        and set(value) == {"$in"}
        and isinstance(value["$in"], list)
        and all(isinstance(name, str) for name in value["$in"])
    ):
        return list(value["$in"])
    raise refuse(
        f"{field}: must be a pipeline name or {{'$in': [names]}} for a token limited to "
        f"pipelines, not {describe(value)}"
    )


def _within(grant: Grant, field: str, pipelines: list[str]) -> None:
    assert grant.pipelines is not None
    outside = sorted(set(pipelines) - grant.pipelines)
    if outside:
        raise refuse(f"{field}: {_limited(grant)}, not {', '.join(map(repr, outside))}")


# --------------------------------------------------------------------------- routes
def check_deposit(grant: Grant | None, documents: Sequence[Mapping[str, Any]]) -> None:
    """``POST /work``: every work must be in the token's pipelines."""
    if grant is None or grant.pipelines is None:
        return
    for index, document in enumerate(documents):
        _within(grant, f"works[{index}].pipeline", [document.get("pipeline")])  # type: ignore[list-item]


def check_withdraw(grant: Grant | None, query: Any) -> None:
    """``POST /work/withdraw``: the filter must name only the token's pipelines."""
    if grant is None or grant.pipelines is None:
        return
    if not isinstance(query, dict) or "pipeline" not in query:
        raise refuse(f"body.pipeline: is required; {_limited(grant)}")
    _within(grant, "body.pipeline", _requested_pipelines("body.pipeline", query["pipeline"]))


async def check_update(
    grant: Grant | None, documents: Sequence[Mapping[str, Any]], pipelines_of: PipelinesOf
) -> None:
    """``PUT /work``: a work token writes its own record and attempt; others their pipelines."""
    if grant is None:
        return
    if grant.record is not None:
        for index, document in enumerate(documents):
            if document.get("id") != grant.record:
                raise refuse(
                    f"works[{index}].id: {grant.name} may only update its own record "
                    f"{grant.record!r}"
                )
            if document.get("attempt") != grant.attempt:
                raise refuse(
                    f"works[{index}].attempt: {grant.name} may only write attempt "
                    f"{grant.attempt}, not {document.get('attempt')!r}"
                )
        return
    if grant.pipelines is None:
        return
    check_deposit(grant, documents)
    stored = await pipelines_of([str(document.get("id")) for document in documents])
    for index, document in enumerate(documents):
        pipeline = stored.get(str(document.get("id")))
        if pipeline is not None and pipeline not in grant.pipelines:
            raise refuse(
                f"works[{index}].id: the stored work is in pipeline {pipeline!r}; {_limited(grant)}"
            )


async def check_delete(grant: Grant | None, ids: Sequence[str], pipelines_of: PipelinesOf) -> None:
    """``DELETE /work``: every existing work named must be in the token's pipelines."""
    if grant is None or grant.pipelines is None:
        return
    stored = await pipelines_of(ids)
    for index, work_id in enumerate(ids):
        pipeline = stored.get(work_id)
        if pipeline is not None and pipeline not in grant.pipelines:
            raise refuse(
                f"query.ids[{index}]: work {work_id!r} is in pipeline {pipeline!r}; "
                f"{_limited(grant)}"
            )


def check_get_id(grant: Grant | None, work_id: str) -> None:
    """``GET /work/{id}`` before the lookup: a work token reads its own record only."""
    if grant is not None and grant.record is not None and work_id != grant.record:
        raise refuse(f"path.work_id: {grant.name} may only read its own record {grant.record!r}")


def check_get_pipeline(grant: Grant | None, pipeline: Any) -> None:
    """``GET /work/{id}`` after the lookup: the work must be in the token's pipelines."""
    if grant is not None and grant.pipelines is not None and pipeline not in grant.pipelines:
        raise refuse(f"path.work_id: the work is in pipeline {pipeline!r}; {_limited(grant)}")


def narrow_view(grant: Grant | None, query: dict[str, Any]) -> dict[str, Any]:
    """``POST /view``: the query a limited token may run (its own record, its pipelines)."""
    if grant is None:
        return query
    if grant.record is not None:
        wanted = query.get("id")
        ids = _requested_ids(wanted) if wanted is not None else None
        if ids is None or set(ids) != {grant.record}:
            raise refuse(
                f"body.query.id: {grant.name} may only view its own record; "
                f"query.id must be {grant.record!r}"
            )
        return query
    if grant.pipelines is None:
        return query
    if "pipeline" not in query:
        return {**query, "pipeline": {"$in": sorted(grant.pipelines)}}
    _within(
        grant,
        "body.query.pipeline",
        _requested_pipelines("body.query.pipeline", query["pipeline"]),
    )
    return query


def _requested_ids(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and set(value) == {"$in"} and isinstance(value["$in"], list):
        return [item for item in value["$in"] if isinstance(item, str)] or None
    return None


def check_counts(grant: Grant | None, pipeline: str) -> None:
    """``GET /status/details/{pipeline}``: one of the token's pipelines."""
    if grant is not None and grant.pipelines is not None:
        _within(grant, "path.pipeline", [pipeline])


def visible_pipelines(grant: Grant | None) -> frozenset[str] | None:
    """The pipelines ``/status`` and ``/status/pipelines`` cover; None: all."""
    return None if grant is None else grant.pipelines
