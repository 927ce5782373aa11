"""The works: deposit, withdraw (claim), update, delete, get one, and view (find).

Every route here reads its body itself (``bodies.parse_json``) instead of
letting the framework parse it, so that malformed, oversized or hostile input
becomes a 4xx naming the field and the rule, never a 500, and so the hot paths
(withdraw above all) stay cheap: a claimed work goes from the database to the
socket as the JSON text the database returned.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from workflow.buckets import tenancy
from workflow.buckets.bodies import BodyError, check_text, describe, parse_json
from workflow.buckets.documents import (
    join_messages,
    prepare_deposit,
    validate_works,
    validation_messages,
)
from workflow.buckets.guards import Guards, grant_of
from workflow.buckets.openapi import (
    DEPOSIT_DESCRIPTION,
    EXAMPLE_WORK,
    JSON,
    OWNER_MAX_LENGTH,
    OWNER_PATTERN,
    UPDATE_DESCRIPTION,
    WORK_REF,
    WORKS,
    ViewRequest,
    errors,
    json_reply,
    request_body,
)
from workflow.buckets.queries import parse_projection
from workflow.buckets.routes.depends import SettingsDep, StoreDep, WithdrawsDep, read_off_loop
from workflow.buckets.stores import Store
from workflow.buckets.tenancy import PipelinesOf

TRUE = b"true"
NULL = b"null"
ID_AND_PIPELINE = parse_projection({"id": True, "pipeline": True})


def router(guards: Guards) -> APIRouter:
    """The works routes, behind ``guards``."""
    routes = APIRouter(tags=["works"])
    auth_errors = guards.auth_errors

    @routes.post(
        "/work",
        summary="Deposit works (all or none)",
        dependencies=guards.write,
        responses={
            200: json_reply(
                {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"const": True}]},
                "The ids, in input order, when return_ids is true; else true.",
            ),
            **errors(400, *auth_errors, 413, 422),
        },
        description=DEPOSIT_DESCRIPTION,
        openapi_extra=request_body(
            WORKS,
            "Works to store. A work with an id keeps it; an existing id is left unchanged.",
            [EXAMPLE_WORK],
        ),
    )
    async def deposit(
        request: Request,
        store: StoreDep,
        settings: SettingsDep,
        return_ids: Annotated[
            list[str],
            Query(
                description="True to answer with the ids; may be repeated. "
                "True/False/true/false/1/0.",
            ),
        ] = [],  # noqa: B006 - FastAPI copies parameter defaults per request
        owner: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=OWNER_MAX_LENGTH,
                pattern=OWNER_PATTERN,
                description="Who runs these works itself (an extension of the public API): "
                "they are stored with their own status and never claimed or audited. "
                f"1 to {OWNER_MAX_LENGTH} of A-Z a-z 0-9 . _ : / -.",
                examples=["kubernetes-operator"],
            ),
        ] = None,
    ) -> Response:
        wants_ids = _flag(return_ids)
        body = await request.body()
        max_values = settings.max_body_values
        documents = await read_off_loop(
            body, lambda: validate_works(parse_json(body, max_values), for_update=False)
        )
        tenancy.check_deposit(grant_of(request), documents)
        ids = prepare_deposit(documents, managed=owner is not None)
        await store.deposit(documents, owner)
        return JSONResponse(ids) if wants_ids else Response(TRUE, media_type=JSON)

    @routes.post(
        "/work/withdraw",
        summary="Claim the most urgent queued work matching a filter",
        dependencies=guards.write,
        responses={
            200: json_reply(
                {"oneOf": [WORK_REF, {"type": "null"}]},
                "The claimed work, now running; null when nothing matches.",
            ),
            **errors(400, *auth_errors, 413, 422),
        },
        openapi_extra=request_body(
            {"type": "object", "additionalProperties": True},
            "A filter; the public client sends pipeline (always), site, priority, user, "
            "event, tags and config.parent.",
            {"pipeline": {"$in": ["sample"]}, "site": "local", "tags": {"$in": ["nightly"]}},
        ),
    )
    async def withdraw(
        request: Request, store: StoreDep, settings: SettingsDep, withdraws: WithdrawsDep
    ) -> Response:
        body = await request.body()
        max_values = settings.max_body_values
        grant = grant_of(request)
        if grant is not None and grant.pipelines is not None:
            tenancy.check_withdraw(grant, parse_json(body, max_values))
        claim = withdraws.get(body)
        if claim is None:
            prepared = await read_off_loop(
                body, lambda: store.prepare_withdraw(_filter_body(parse_json(body, max_values)))
            )
            claim = withdraws.keep(body, prepared)
        document = await claim()
        return Response(NULL if document is None else document, media_type=JSON)

    @routes.put(
        "/work",
        summary="Replace works by id (all or none)",
        description=UPDATE_DESCRIPTION,
        dependencies=guards.write_record,
        responses={
            200: json_reply({"const": True}, "true once every work is stored."),
            **errors(400, *auth_errors, 404, 409, 413, 422),
        },
        openapi_extra=request_body(
            WORKS,
            "Whole works, each with its id. An unknown id fails the batch with 404.",
            [{**EXAMPLE_WORK, "id": "0190f0c3a1b2c3d4e5f6a7b8c9d0e1f2", "status": "success"}],
        ),
    )
    async def update(
        request: Request,
        store: StoreDep,
        settings: SettingsDep,
        guard: Annotated[
            Literal["attempt"] | None,
            Query(
                description="`attempt`: refuse (409, nothing written) if any stored work is "
                "further along than the document sent for it (an extension of the public API; "
                "see the description of this route).",
            ),
        ] = None,
    ) -> Response:
        body = await request.body()
        max_values = settings.max_body_values
        documents = await read_off_loop(
            body, lambda: validate_works(parse_json(body, max_values), for_update=True)
        )
        await tenancy.check_update(grant_of(request), documents, pipelines_in(store))
        await store.update(documents, guarded=guard == "attempt")
        return Response(TRUE, media_type=JSON)

    @routes.delete(
        "/work",
        summary="Delete works by id",
        dependencies=guards.write,
        responses={
            200: json_reply({"const": True}, "true; unknown ids are ignored."),
            **errors(*auth_errors, 422),
        },
    )
    async def delete(
        request: Request,
        store: StoreDep,
        ids: Annotated[list[str], Query(description="Ids to delete; repeat the parameter.")] = [],  # noqa: B006
    ) -> Response:
        checked = [check_text("query.ids", work_id) for work_id in ids]
        await tenancy.check_delete(grant_of(request), checked, pipelines_in(store))
        await store.delete(checked)
        return Response(TRUE, media_type=JSON)

    @routes.get(
        "/work/{work_id:path}",
        summary="One work by id",
        dependencies=guards.read_record,
        responses={
            200: json_reply(WORK_REF, "The stored work."),
            **errors(*auth_errors, 404, 422),
        },
    )
    async def get_work(request: Request, store: StoreDep, work_id: str) -> Response:
        grant = grant_of(request)
        tenancy.check_get_id(grant, work_id)
        document = await store.get(check_text("path.work_id", work_id))
        if document is None:
            raise HTTPException(404, f"work {work_id!r} does not exist")
        if grant is not None and grant.pipelines is not None:
            tenancy.check_get_pipeline(grant, json.loads(document).get("pipeline"))
        return Response(document, media_type=JSON)

    @routes.post(
        "/view",
        summary="Find works (MongoDB find: query, projection, skip, limit)",
        dependencies=guards.read_record,
        responses={
            200: json_reply(
                {"type": "array", "items": {"type": "object"}},
                "Matching works in (creation, id) order, projected; [] when none match.",
            ),
            **errors(400, *auth_errors, 413, 422),
        },
        openapi_extra=request_body(
            {"$ref": "#/components/schemas/ViewRequest"},
            "What to find.",
            {
                "query": {"pipeline": "sample"},
                "projection": {"id": True, "_id": False},
                "skip": 0,
                "limit": 100,
            },
        ),
    )
    async def view(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
        body = await request.body()
        max_values = settings.max_body_values
        wanted = await read_off_loop(body, lambda: _view_request(parse_json(body, max_values)))
        projection = parse_projection(wanted.projection)
        limit = wanted.limit or None
        query = tenancy.narrow_view(grant_of(request), wanted.query)
        documents = await store.view(query, projection, wanted.skip, limit)
        return JSONResponse(documents)

    return routes


def pipelines_in(store: Store) -> PipelinesOf:
    """The pipelines of the stored works among some ids (for pipeline-limited tokens)."""

    async def pipelines_of(ids: Any) -> dict[str, str]:
        if not ids:
            return {}
        rows = await store.view({"id": {"$in": list(ids)}}, ID_AND_PIPELINE, 0, None)
        found: dict[str, Any] = {row["id"]: row.get("pipeline") for row in rows}
        return found

    return pipelines_of


def _flag(values: list[str]) -> bool:
    """Read a repeated boolean query parameter (the public client sends it twice)."""
    seen = set()
    for value in values:
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            seen.add(True)
        elif lowered in ("false", "0", "no"):
            seen.add(False)
        else:
            raise BodyError(f"query.return_ids: {value!r} is not a boolean (True or False)")
    if len(seen) > 1:
        raise BodyError("query.return_ids: is given both true and false")
    return seen.pop() if seen else False


def _filter_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BodyError(f"body: must be an object (a filter), not {describe(body)}")
    return body


def _view_request(body: Any) -> ViewRequest:
    if not isinstance(body, dict):
        raise BodyError(
            f"body: must be an object with query, projection, skip and limit, not {describe(body)}"
        )
    try:
        return ViewRequest.model_validate(body)
    except ValidationError as error:
        raise BodyError(join_messages(validation_messages("body", error))) from None
