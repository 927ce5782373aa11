"""What the buckets API promises, in words and shapes: its OpenAPI document.

The prose (the API description and the longer route descriptions), the tags,
the reply and body shapes the routes declare, the schemas of the bodies the
routes read themselves (``WorkDocument``, ``ViewRequest``), and the docs routes
served behind the read scope when tokens are configured. The routes, in
``workflow.buckets.routes``, say only what they do.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from pydantic.json_schema import models_json_schema

from workflow.buckets.bodies import MAX_DEPTH
from workflow.buckets.queries import SUPPORTED
from workflow.definitions.work import WorkDocument

INT64_MAX = 2**63 - 1
JSON = "application/json"

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


TAGS = [
    {"name": "works", "description": "Deposit, claim, update, read and delete works."},
    {"name": "status", "description": "Counts of works by status."},
    {"name": "audit", "description": "Housekeeping the audit daemon runs."},
    {"name": "service", "description": "Liveness and version; never need a token."},
]

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

#: What an ``owner`` may be: a short name, safe in logs and URLs.
OWNER_PATTERN = r"^[A-Za-z0-9._:/-]+$"
OWNER_MAX_LENGTH = 64

#: Where the OpenAPI document and its viewers are served.
OPENAPI_PATH, DOCS_PATH, REDOC_PATH = "/openapi.json", "/docs", "/redoc"


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


WORK_REF = {"$ref": "#/components/schemas/WorkDocument"}
WORKS = {"type": "array", "items": WORK_REF}
EXAMPLE_WORK = {
    "pipeline": "sample",
    "site": "local",
    "user": "ada",
    "command": ["python", "-c", "print(42)"],
    "priority": 3,
}


def json_reply(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A reply of JSON following ``schema``."""
    return {"description": description, "content": {JSON: {"schema": schema}}}


def request_body(schema: dict[str, Any], description: str, example: Any = None) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads its JSON body itself."""
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {
        "requestBody": {"required": True, "description": description, "content": {JSON: content}}
    }


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error replies ``codes``, each with the sentence saying when it comes."""
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


def serve_docs_guarded(app: FastAPI, read: list[Any]) -> None:
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


def add_body_schemas(app: FastAPI) -> None:
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
