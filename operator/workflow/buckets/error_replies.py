"""Errors as replies: each error the routes and stores raise, and the status it is answered with.

400 unreadable JSON or an unsupported query, 404 unknown works, 409 a guarded
update that found a record further along, 413/400 bodies over the limits, 422
values breaking a rule, 503 a database that does not answer; always as
``{"detail": "<where>: <what>"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from workflow.buckets.bodies import BodyError
from workflow.buckets.documents import join_messages
from workflow.buckets.queries import QueryError
from workflow.buckets.stores import StaleWorksError, UnknownWorksError

log = logging.getLogger("workflow.buckets")


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error the routes raise as ``{"detail": "<where>: <what>"}``."""

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
        return detail(422, join_messages(messages))

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


def _loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
