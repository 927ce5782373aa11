"""The buckets HTTP API: routes that speak the public client's wire contract.

``create_app(settings)`` builds the ASGI application. Every route reads its
body itself (``bodies.parse_json``) instead of letting the framework parse
it, so that malformed, oversized or hostile input becomes a 4xx naming the
field and the rule, never a 500, and so the hot paths (withdraw above all)
stay cheap: a claimed work goes from the database to the socket as the JSON
text the database returned.

Beyond the public contract, ``POST /work?owner=<name>`` deposits *managed*
works: records of works their owner (the Kubernetes operator) runs itself.
They keep their status and are never claimed or audited, so no worker runs
them a second time (``DEPOSIT_DESCRIPTION``; the stores keep them out of the
claim queue).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from pydantic.json_schema import models_json_schema

from workflow import __version__
from workflow.buckets import tenancy
from workflow.buckets.auth import (
    Authenticator,
    Grant,
    Refused,
    Scope,
    load_tokens,
    presented_token,
)
from workflow.buckets.bodies import MAX_DEPTH, BodyError, check_text, describe, parse_json
from workflow.buckets.documents import (
    prepare_deposit,
    summarize,
    validate_works,
    validation_messages,
)
from workflow.buckets.limits import BodyLimitMiddleware
from workflow.buckets.prepared import PreparedWithdraws
from workflow.buckets.queries import SUPPORTED, QueryError, parse_projection
from workflow.buckets.settings import BucketsSettings
from workflow.buckets.stores import StaleWorksError, Store, UnknownWorksError, make_store
from workflow.definitions.work import WorkDocument

log = logging.getLogger("workflow.buckets")
T = TypeVar("T")

INT64_MAX = 2**63 - 1
JSON = "application/json"
TRUE = b"true"
NULL = b"null"

DESCRIPTION = f"""
The work queue of **workflow**: scripts and the operator deposit works,
workers withdraw the most urgent one, and report the outcome with an update.

This API is wire-compatible with the public `workflow-core` client. Where
that client leaves a choice open, this server decides as follows.

* **Ids.** A deposited work without an `id` gets a new one: 32 hex digits,
  time-ordered. A work that already carries an `id` keeps it. Depositing an
  id that already exists is idempotent: no second record is made, the stored
  work is left unchanged, and the id is returned as if it were new. A
  re-sent deposit (the client retries when a reply is lost) is therefore
  harmless for works with ids.
* **Deposit** sets `status` to `queued`, validates every work before
  storing any, and stores all or none. Fields a work omits get the model's
  defaults; unknown top-level fields are dropped.
* **Managed works** (an extension). `POST /work?owner=<name>` deposits
  works that `<name>` runs itself (the Kubernetes operator, as
  `kubernetes-operator`): they keep the `status` they are sent with, are
  never handed out by withdraw, and the `failed` and `expired` audits leave
  them alone (the owner runs retries and timeouts). `PUT /work` keeps a
  work managed, whatever its status. Views, counts, get and delete treat
  them like any other work.
* **Withdraw** claims, atomically, the queued work with the highest
  `priority` (5 is most urgent), then the oldest `creation`, then the
  smallest id, among the works that match the filter; it becomes `running`
  with `start` set to now and `attempt` increased by one. Nothing to claim
  is answered with JSON `null`.
* **Filters** (`/view`, `/work/withdraw`) accept equality (a value matches
  an array field that contains it), {SUPPORTED}, and dotted paths into the
  document. `$expr` compares two fields, as in
  `{{"$expr": {{"$gte": ["$attempt", "$retries"]}}}}`. Anything else is
  answered 400, naming the operator. Object and array equality compares the
  whole value.
* **View** returns works in `(creation, id)` order, so `skip`/`limit`
  paging neither repeats nor loses works. `limit` `null` or `0` means no
  limit (as in MongoDB). Projections follow MongoDB: inclusion or exclusion
  of (dotted) fields, `_id` is never returned.
* **Audit.** `failed` re-queues failed works that have attempts left. A
  work runs at most `1 + retries` attempts, so a failed work is re-queued
  while `attempt < 1 + retries` (the original server's rule is thought to be
  `attempt < retries`, which would run one attempt fewer than `retries`
  promises). `expired` fails running works whose `start + timeout` is past.
  `stale/{{days}}` only counts works created more than `days` days ago; it
  deletes nothing. Each answers with a JSON integer.
* **Tokens.** When the server has tokens configured, every route except
  `/healthz` and `GET`/`HEAD /version` needs one, as `x-access-token:
  <token>` or `Authorization: Bearer <token>`; these docs (`/docs`,
  `/redoc`, `/openapi.json`) need the `read` scope. Missing: 401; unknown or
  lacking the route's scope (`read` or `write`): 403. Without tokens
  configured everything, docs included, is open.
* **Tenancy.** A token may be limited to some pipelines: it deposits,
  withdraws, reads, updates and deletes works of those pipelines only (a
  withdraw must name them; a view or count without a pipeline covers only
  them) and cannot run `/audit/failed`, `/audit/expired` or `/audit/stale`.
  A *work token*, which the Kubernetes operator signs for one attempt of one
  Work, may only read that Work's record (`GET /work/{{id}}`, `POST /view`
  with `query.id` its id) and update it (`PUT /work`, with its own
  `attempt`) until it expires. Anything else: 403 naming the field and rule.
* **Limits.** A request body may be at most `max_body_bytes` long (a
  setting; 16 MiB by default), hold at most `max_body_values` JSON values
  (1,000,000 by default; each array, object, string, number, `true`,
  `false` and `null` counts, object keys do not) and nest arrays and
  objects at most {MAX_DEPTH} deep. Longer or fuller bodies are answered 413
  before they are parsed, deeper ones 400; the message names the rule and
  the limit this server applies.
* **Errors** are `{{"detail": "<where>: <what>"}}`: 400 unreadable JSON or an
  unsupported operator, 404 unknown work, 413 body too large or holding too
  many values, 422 a value breaking a rule (e.g. `works[3].priority: Input
  should be less than or equal to 5`).
"""


class Error(BaseModel):
    """Every error reply: one sentence naming the field and the rule."""

    detail: str = Field(examples=["works[3].priority: Input should be less than or equal to 5"])


class ViewRequest(BaseModel):
    """The body of ``POST /view``: MongoDB ``find(query, projection).skip().limit()``."""

    model_config = ConfigDict(extra="forbid", title="ViewRequest")

    query: dict[str, Any] = Field(
        default_factory=dict,
        description="Filter (see the API description for what is supported).",
        examples=[{"pipeline": "sample", "status": {"$in": ["queued", "running"]}}],
    )
    projection: dict[str, Any] | None = Field(
        default=None,
        description="MongoDB projection; empty or null returns whole works.",
        examples=[{"id": True, "_id": False}],
    )
    skip: StrictInt = Field(default=0, ge=0, le=INT64_MAX, description="Works to skip.")
    limit: StrictInt | None = Field(
        default=100,
        ge=0,
        le=INT64_MAX,
        description="Most works to return; null or 0 for no limit. Default 100.",
    )


COUNTS_SCHEMA = {
    "type": "object",
    "description": "Work counts, keys in this order: total, queued, running, success, failure.",
    "properties": {
        key: {"type": "integer"} for key in ("total", "queued", "running", "success", "failure")
    },
    "required": ["total", "queued", "running", "success", "failure"],
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _body(schema: dict[str, Any], description: str, example: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {
        "requestBody": {"required": True, "description": description, "content": {JSON: content}}
    }


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    reasons = {
        400: "Unreadable JSON, or an unsupported query operator.",
        401: "A token is required and none was sent.",
        403: "The token is unknown or lacks the scope this route needs.",
        404: "No work with that id.",
        409: "A guarded update found a stored work further along; nothing was written.",
        413: "The body is larger, or holds more JSON values, than the server accepts.",
        422: "A value breaks a rule; the message names the field.",
        503: "The database does not answer.",
    }
    return {code: {"model": Error, "description": reasons[code]} for code in codes}


#: Where the OpenAPI document and its viewers are served.
OPENAPI_PATH, DOCS_PATH, REDOC_PATH = "/openapi.json", "/docs", "/redoc"

#: What an ``owner`` may be: a short name, safe in logs and URLs.
OWNER_PATTERN = r"^[A-Za-z0-9._:/-]+$"
OWNER_MAX_LENGTH = 64

DEPOSIT_DESCRIPTION = """
Stores every work of the body, or none. Each work gets an id unless it
carries one; an id that already exists is left unchanged (the deposit is
idempotent) and its id is returned as if it were new.

Without `owner` (the public contract) every new work is stored with
`status` `queued` and can be claimed by `POST /work/withdraw`.

With `owner=<name>` (an extension) the works are **managed** by `<name>`,
which runs them itself, as the Kubernetes operator does with its Jobs. A
managed work

* is stored with the `status` it is sent with (not forced to `queued`);
* is never handed out by `POST /work/withdraw`, whatever its status, so a
  worker cannot run it a second time;
* is left alone by `/audit/failed` and `/audit/expired`: its owner runs its
  retries and enforces its timeout;
* stays managed when `PUT /work` replaces it (the owner reports progress
  that way), even with `status` `queued`;
* is otherwise like any work: `/view`, `/status`, `GET /work/{id}` and
  `DELETE /work` include it.

An id that already exists keeps its stored record, owner included: a
re-sent deposit neither takes an ordinary work over nor releases a managed
one. `owner` is 1 to 64 characters of `A-Z a-z 0-9 . _ : / -`; anything else
is answered 422 naming `query.owner`, before anything is stored.
"""

UPDATE_DESCRIPTION = """
Replaces every work of the body by id, or none; an unknown id fails the
batch with 404.

With `guard=attempt` (an extension) the update is refused with 409, and
nothing is written, when any stored work is further along than the
document sent for it. How far a record is: its `attempt`, then its stage
in that attempt: *ended* once it has a `stop` time or a final status,
*running* while its status is `running`, else *waiting*. So a runner's
record of the start of attempt 2 never overwrites the outcome of attempt 2
that arrived first, nor does anything about attempt 1 overwrite attempt 2.
The comparison and the write happen in one transaction on the works' rows.
The runner and the operator send their updates guarded; without `guard`
an update is applied as the public contract says.
"""

WORK_REF = {"$ref": "#/components/schemas/WorkDocument"}
WORKS = {"type": "array", "items": WORK_REF}
EXAMPLE_WORK = {
    "pipeline": "sample",
    "site": "local",
    "user": "ada",
    "command": ["python", "-c", "print(42)"],
    "priority": 3,
}


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


def _loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


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
        raise BodyError(summarize(validation_messages("body", error))) from None


#: Bodies longer than this are read (parsed, checked, validated) on a worker thread.
OFF_LOOP_BYTES = 256 * 1024


async def _read(body: bytes, read: Callable[[], T]) -> T:
    """``read()`` of ``body``: at once when it is short, on a worker thread when it is long.

    Parsing and checking a body of several MiB takes a CPU-bound while
    (tens to hundreds of milliseconds, more to count and refuse millions of
    tiny values). On a worker thread the interpreter hands the event loop
    its turn every few milliseconds, so ``/healthz`` and other requests keep
    being answered meanwhile; short bodies are read at once, as a thread hop
    would cost more than the parse.
    """
    if len(body) <= OFF_LOOP_BYTES:
        return read()
    return await asyncio.to_thread(read)


def create_app(settings: BucketsSettings | None = None, *, store: Store | None = None) -> FastAPI:
    """The buckets ASGI application for ``settings`` (default: from the environment)."""
    settings = settings or BucketsSettings()
    inline = settings.tokens.get_secret_value() if settings.tokens else None
    signing_key = settings.signing_key.get_secret_value() if settings.signing_key else None
    authenticator = Authenticator(
        load_tokens(settings.tokens_file, inline),
        signing_key=signing_key,
        leeway=settings.token_leeway_seconds,
    )
    store = store or make_store(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        try:
            yield
        finally:
            await store.close()

    app = FastAPI(
        title="buckets",
        version=__version__,
        summary="The work queue of workflow.",
        description=DESCRIPTION,
        lifespan=lifespan,
        # With tokens the docs are served by ``_guard_docs`` instead, behind the read scope.
        openapi_url=None if authenticator.enabled else OPENAPI_PATH,
        docs_url=None if authenticator.enabled else DOCS_PATH,
        redoc_url=None if authenticator.enabled else REDOC_PATH,
        openapi_tags=[
            {"name": "works", "description": "Deposit, claim, update, read and delete works."},
            {"name": "status", "description": "Counts of works by status."},
            {"name": "audit", "description": "Housekeeping the audit daemon runs."},
            {"name": "service", "description": "Liveness and version; never need a token."},
        ],
    )
    app.state.settings = settings
    app.state.store = store
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    _add_error_handlers(app)

    withdraws = PreparedWithdraws()
    max_values = settings.max_body_values

    read = _guard(authenticator, "read")
    write = _guard(authenticator, "write")
    # The routes a work token may use (on its own record), and those that act on every pipeline.
    read_record = _guard(authenticator, "read", work_tokens=True)
    write_record = _guard(authenticator, "write", work_tokens=True)
    write_all = _guard(authenticator, "write", every_pipeline=True)
    read_all = _guard(authenticator, "read", every_pipeline=True)
    auth_errors = (401, 403) if authenticator.enabled else ()
    id_and_pipeline = parse_projection({"id": True, "pipeline": True})

    async def pipelines_of(ids: Any) -> dict[str, str]:
        """The pipelines of the stored works among ``ids`` (for pipeline-limited tokens)."""
        if not ids:
            return {}
        rows = await store.view({"id": {"$in": list(ids)}}, id_and_pipeline, 0, None)
        found: dict[str, Any] = {row["id"]: row.get("pipeline") for row in rows}
        return found

    # Service ---------------------------------------------------------------------------
    @app.get(
        "/version",
        tags=["service"],
        summary="Server version (no token needed)",
        response_description="Name and version of the server.",
    )
    async def version() -> dict[str, str]:
        return {"name": "buckets", "version": __version__}

    @app.head(
        "/version",
        tags=["service"],
        summary="Probe a base URL: 200 without a token (the client checks this first)",
        response_description="Empty; the server answers.",
    )
    async def version_probe() -> Response:
        return Response(status_code=200, media_type=JSON)

    @app.get(
        "/healthz",
        tags=["service"],
        summary="Whether the server and its database answer (no token needed)",
        responses=_errors(503),
    )
    async def healthz() -> dict[str, str]:
        try:
            await store.ping()
        except Exception as error:
            log.warning("health check failed: %s", error)
            raise HTTPException(503, f"the {store.kind} database does not answer") from None
        return {"status": "ok", "store": store.kind}

    # Works -----------------------------------------------------------------------------
    @app.post(
        "/work",
        tags=["works"],
        summary="Deposit works (all or none)",
        dependencies=write,
        responses={
            200: _json(
                {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"const": True}]},
                "The ids, in input order, when return_ids is true; else true.",
            ),
            **_errors(400, *auth_errors, 413, 422),
        },
        description=DEPOSIT_DESCRIPTION,
        openapi_extra=_body(
            WORKS,
            "Works to store. A work with an id keeps it; an existing id is left unchanged.",
            [EXAMPLE_WORK],
        ),
    )
    async def deposit(
        request: Request,
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
        documents = await _read(
            body, lambda: validate_works(parse_json(body, max_values), for_update=False)
        )
        tenancy.check_deposit(_grant(request), documents)
        ids = prepare_deposit(documents, managed=owner is not None)
        await store.deposit(documents, owner)
        return JSONResponse(ids) if wants_ids else Response(TRUE, media_type=JSON)

    @app.post(
        "/work/withdraw",
        tags=["works"],
        summary="Claim the most urgent queued work matching a filter",
        dependencies=write,
        responses={
            200: _json(
                {"oneOf": [WORK_REF, {"type": "null"}]},
                "The claimed work, now running; null when nothing matches.",
            ),
            **_errors(400, *auth_errors, 413, 422),
        },
        openapi_extra=_body(
            {"type": "object", "additionalProperties": True},
            "A filter; the public client sends pipeline (always), site, priority, user, "
            "event, tags and config.parent.",
            {"pipeline": {"$in": ["sample"]}, "site": "local", "tags": {"$in": ["nightly"]}},
        ),
    )
    async def withdraw(request: Request) -> Response:
        body = await request.body()
        grant = _grant(request)
        if grant is not None and grant.pipelines is not None:
            tenancy.check_withdraw(grant, parse_json(body, max_values))
        claim = withdraws.get(body)
        if claim is None:
            prepared = await _read(
                body, lambda: store.prepare_withdraw(_filter_body(parse_json(body, max_values)))
            )
            claim = withdraws.keep(body, prepared)
        document = await claim()
        return Response(NULL if document is None else document, media_type=JSON)

    @app.put(
        "/work",
        tags=["works"],
        summary="Replace works by id (all or none)",
        description=UPDATE_DESCRIPTION,
        dependencies=write_record,
        responses={
            200: _json({"const": True}, "true once every work is stored."),
            **_errors(400, *auth_errors, 404, 409, 413, 422),
        },
        openapi_extra=_body(
            WORKS,
            "Whole works, each with its id. An unknown id fails the batch with 404.",
            [{**EXAMPLE_WORK, "id": "0190f0c3a1b2c3d4e5f6a7b8c9d0e1f2", "status": "success"}],
        ),
    )
    async def update(
        request: Request,
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
        documents = await _read(
            body, lambda: validate_works(parse_json(body, max_values), for_update=True)
        )
        await tenancy.check_update(_grant(request), documents, pipelines_of)
        await store.update(documents, guarded=guard == "attempt")
        return Response(TRUE, media_type=JSON)

    @app.delete(
        "/work",
        tags=["works"],
        summary="Delete works by id",
        dependencies=write,
        responses={
            200: _json({"const": True}, "true; unknown ids are ignored."),
            **_errors(*auth_errors, 422),
        },
    )
    async def delete(
        request: Request,
        ids: Annotated[list[str], Query(description="Ids to delete; repeat the parameter.")] = [],  # noqa: B006
    ) -> Response:
        checked = [check_text("query.ids", work_id) for work_id in ids]
        await tenancy.check_delete(_grant(request), checked, pipelines_of)
        await store.delete(checked)
        return Response(TRUE, media_type=JSON)

    @app.get(
        "/work/{work_id:path}",
        tags=["works"],
        summary="One work by id",
        dependencies=read_record,
        responses={200: _json(WORK_REF, "The stored work."), **_errors(*auth_errors, 404, 422)},
    )
    async def get_work(request: Request, work_id: str) -> Response:
        grant = _grant(request)
        tenancy.check_get_id(grant, work_id)
        document = await store.get(check_text("path.work_id", work_id))
        if document is None:
            raise HTTPException(404, f"work {work_id!r} does not exist")
        if grant is not None and grant.pipelines is not None:
            tenancy.check_get_pipeline(grant, json.loads(document).get("pipeline"))
        return Response(document, media_type=JSON)

    @app.post(
        "/view",
        tags=["works"],
        summary="Find works (MongoDB find: query, projection, skip, limit)",
        dependencies=read_record,
        responses={
            200: _json(
                {"type": "array", "items": {"type": "object"}},
                "Matching works in (creation, id) order, projected; [] when none match.",
            ),
            **_errors(400, *auth_errors, 413, 422),
        },
        openapi_extra=_body(
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
    async def view(request: Request) -> Response:
        body = await request.body()
        wanted = await _read(body, lambda: _view_request(parse_json(body, max_values)))
        projection = parse_projection(wanted.projection)
        limit = wanted.limit or None
        query = tenancy.narrow_view(_grant(request), wanted.query)
        documents = await store.view(query, projection, wanted.skip, limit)
        return JSONResponse(documents)

    # Status ----------------------------------------------------------------------------
    counts_reply = {200: _json(COUNTS_SCHEMA, "Counts of works."), **_errors(*auth_errors)}

    @app.get(
        "/status",
        tags=["status"],
        summary="Counts over all works",
        dependencies=read,
        responses=counts_reply,
    )
    async def status(request: Request) -> dict[str, int]:
        visible = tenancy.visible_pipelines(_grant(request))
        if visible is None:
            return await store.counts()
        total: dict[str, int] = {}
        for pipeline in sorted(visible):
            for key, count in (await store.counts(pipeline)).items():
                total[key] = total.get(key, 0) + count
        return total

    @app.get(
        "/status/pipelines",
        tags=["status"],
        summary="Names of the pipelines that hold works",
        dependencies=read,
        responses={**_errors(*auth_errors)},
    )
    async def pipelines(request: Request) -> list[str]:
        visible = tenancy.visible_pipelines(_grant(request))
        names = await store.pipelines()
        return names if visible is None else [name for name in names if name in visible]

    @app.get(
        "/status/details/{pipeline}",
        tags=["status"],
        summary="Counts of one pipeline (all zero when it holds no works)",
        dependencies=read,
        responses={**counts_reply, **_errors(*auth_errors, 422)},
    )
    async def details(request: Request, pipeline: str) -> dict[str, int]:
        tenancy.check_counts(_grant(request), pipeline)
        return await store.counts(check_text("path.pipeline", pipeline))

    # Audit -----------------------------------------------------------------------------
    @app.get(
        "/audit/failed",
        tags=["audit"],
        summary="Re-queue failed works with attempts left (attempt < 1 + retries)",
        dependencies=write_all,
        responses={**_errors(*auth_errors)},
        response_description="How many works were re-queued.",
    )
    async def audit_failed() -> int:
        return await store.requeue_failed()

    @app.get(
        "/audit/expired",
        tags=["audit"],
        summary="Fail running works whose start + timeout has passed",
        dependencies=write_all,
        responses={**_errors(*auth_errors)},
        response_description="How many works were marked failed.",
    )
    async def audit_expired() -> int:
        return await store.expire_running(time.time())

    @app.get(
        "/audit/stale/{days}",
        tags=["audit"],
        summary="Count works created more than `days` days ago (deletes nothing)",
        dependencies=read_all,
        responses={**_errors(*auth_errors, 422)},
        response_description="How many works are older than that.",
    )
    async def audit_stale(
        days: Annotated[
            float,
            Path(ge=0, le=1_000_000, allow_inf_nan=False, description="Age in days, e.g. 7.0."),
        ],
    ) -> int:
        return await store.count_created_before(time.time() - days * 86_400)

    _document(app)
    if authenticator.enabled:
        _guard_docs(app, read)
    return app


def _grant(request: Request) -> Grant | None:
    """What the request's token may touch; None when tokens are not configured."""
    return getattr(request.state, "grant", None)


def _guard(
    authenticator: Authenticator,
    scope: Scope,
    *,
    work_tokens: bool = False,
    every_pipeline: bool = False,
) -> list[Any]:
    """Route dependencies enforcing ``scope`` when tokens are configured (none otherwise).

    The grant is kept on ``request.state`` for the route's own checks
    (``tenancy``). Work tokens are refused unless the route takes them
    (``work_tokens``: it limits them to their record itself); routes that act
    on ``every_pipeline`` refuse tokens limited to some.
    """
    if not authenticator.enabled:
        return []
    header = APIKeyHeader(
        name="x-access-token",
        auto_error=False,
        description="The token, as the public client sends it.",
    )
    bearer = HTTPBearer(auto_error=False, description="The token as a bearer token.")

    # Defaults rather than Annotated: the annotations are strings here (postponed
    # evaluation) and could not name these local schemes.
    async def check(
        request: Request,
        _header: str | None = Security(header),
        _bearer: Any = Security(bearer),  # noqa: B008
    ) -> None:
        presented = presented_token(request.headers)
        if presented is None:
            raise HTTPException(
                401,
                "missing access token: send it as 'x-access-token: <token>' "
                "or 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            grant = authenticator.grant(presented)
        except Refused as refusal:
            raise HTTPException(403, str(refusal)) from None
        route = f"{request.method} {request.url.path}"
        if grant.record is not None and not work_tokens:
            raise HTTPException(403, f"{tenancy.RECORD_ONLY}, not {route}")
        if grant.pipelines is not None and every_pipeline:
            raise HTTPException(
                403,
                f"{grant.name} is limited to pipelines {', '.join(sorted(grant.pipelines))}; "
                f"{route} acts on every pipeline",
            )
        if scope not in grant.scopes:
            raise HTTPException(403, f"{grant.name} lacks the {scope!r} scope that {route} needs")
        request.state.grant = grant

    return [Depends(check)]


def _guard_docs(app: FastAPI, read: list[Any]) -> None:
    """Serve the OpenAPI document and its two viewers only to tokens with the read scope.

    The document describes every route and its parameters: with tokens
    configured, who may not read works may not read that either. FastAPI's
    own docs routes take no dependencies, so these replace them (the
    application is built without them when tokens are configured).
    """
    options: dict[str, Any] = {
        "methods": ["GET", "HEAD"],
        "include_in_schema": False,
        "dependencies": read,
    }

    @app.api_route(OPENAPI_PATH, **options)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.api_route(DOCS_PATH, **options)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_PATH, title=f"{app.title} - Swagger UI")

    @app.api_route(REDOC_PATH, **options)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=OPENAPI_PATH, title=f"{app.title} - ReDoc")


def _add_error_handlers(app: FastAPI) -> None:
    def detail(status: int, message: str) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status)

    def handler(
        function: Callable[[Any], JSONResponse],
    ) -> Callable[[Request, Any], Awaitable[JSONResponse]]:
        async def handle(request: Request, error: Any) -> JSONResponse:
            return function(error)

        return handle

    app.add_exception_handler(BodyError, handler(lambda error: detail(error.status, error.message)))
    app.add_exception_handler(QueryError, handler(lambda error: detail(400, str(error))))
    app.add_exception_handler(UnknownWorksError, handler(lambda error: detail(404, str(error))))
    app.add_exception_handler(StaleWorksError, handler(lambda error: detail(409, str(error))))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        messages = [f"{_loc(tuple(item['loc']))}: {item['msg']}" for item in error.errors()]
        return detail(422, summarize(messages))

    try:
        from psycopg import OperationalError
        from psycopg_pool import PoolTimeout
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def unavailable(request: Request, error: Exception) -> JSONResponse:
        log.error("database unavailable during %s %s: %s", request.method, request.url.path, error)
        return detail(503, "the database does not answer; try again shortly")


def _document(app: FastAPI) -> None:
    """Add the schemas the hand-read bodies refer to to the OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        _, definitions = models_json_schema(
            [(WorkDocument, "validation"), (ViewRequest, "validation")],
            ref_template="#/components/schemas/{model}",
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in definitions.get("$defs", {}).items():
            schemas.setdefault(name, definition)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
