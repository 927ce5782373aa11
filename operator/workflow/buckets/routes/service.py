"""Liveness and version: the routes that never need a token."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from workflow import __version__
from workflow.buckets.guards import Guards
from workflow.buckets.openapi import JSON, errors
from workflow.buckets.routes.depends import StoreDep

log = logging.getLogger("workflow.buckets")


def router(guards: Guards) -> APIRouter:
    """``GET``/``HEAD /version`` and ``GET /healthz``, open to all whatever ``guards``."""
    routes = APIRouter(tags=["service"])

    @routes.get(
        "/version",
        summary="Server version (no token needed)",
        response_description="Name and version of the server.",
    )
    async def version() -> dict[str, str]:
        return {"name": "buckets", "version": __version__}

    @routes.head(
        "/version",
        summary="Probe a base URL: 200 without a token (the client checks this first)",
        response_description="Empty; the server answers.",
    )
    async def version_probe() -> Response:
        return Response(status_code=200, media_type=JSON)

    @routes.get(
        "/healthz",
        summary="Whether the server and its database answer (no token needed)",
        responses=errors(503),
    )
    async def healthz(store: StoreDep) -> dict[str, str]:
        try:
            await store.ping()
        except Exception as error:
            log.warning("health check failed: %s", error)
            raise HTTPException(503, f"the {store.kind} database does not answer") from None
        return {"status": "ok", "store": store.kind}

    return routes
