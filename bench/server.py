"""The buckets service exactly as ``python -m workflow.buckets`` serves it, plus an echo route.

The HTTP ceiling of the buckets benchmarks is a trivial endpoint on the very
same server stack: the application ``create_app`` builds (same middleware,
same error handlers), under the same uvicorn options, in the same process.
This module wraps ``create_app`` so that the application it returns has one
more route, ``POST /bench/echo``, then starts the server through
``workflow.buckets.__main__`` like the real command. The echo route reads the
request body and answers a fixed JSON work of the size withdraw returns,
without parsing or touching the database. Only benchmarks run this module;
the product has no such route.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

import workflow.buckets.app as buckets_app
from workflow.buckets import __main__ as buckets_main

ECHO_PATH = "/bench/echo"


def echo_document() -> bytes:
    """A stored work of about 1 KB, as withdraw would answer it."""
    from bench.workload import documents

    [document] = documents(1, pipelines=1)
    document.update(id="0" * 32, status="running", start=1.0, attempt=1)
    return json.dumps(document, separators=(",", ":")).encode()


def with_echo(create: Any) -> Any:
    """``create_app`` whose application also answers ``POST /bench/echo``."""

    def create_app(*args: Any, **kwargs: Any) -> FastAPI:
        app = create(*args, **kwargs)
        reply = echo_document()

        @app.post(ECHO_PATH, include_in_schema=False)
        async def echo(request: Request) -> Response:
            await request.body()
            return Response(reply, media_type="application/json")

        return app

    return create_app


def main() -> None:
    buckets_app.create_app = with_echo(buckets_app.create_app)
    buckets_main.main()


if __name__ == "__main__":
    main()
