"""Counts of works by status: over all works, per pipeline, and the pipelines' names."""

from __future__ import annotations

from fastapi import APIRouter, Request

from workflow.buckets import tenancy
from workflow.buckets.bodies import check_text
from workflow.buckets.guards import Guards, grant_of
from workflow.buckets.openapi import COUNTS_SCHEMA, errors, json_reply
from workflow.buckets.routes.depends import StoreDep


def router(guards: Guards) -> APIRouter:
    """The status routes, behind ``guards``."""
    routes = APIRouter(tags=["status"])
    auth_errors = guards.auth_errors
    counts_reply = {200: json_reply(COUNTS_SCHEMA, "Counts of works."), **errors(*auth_errors)}

    @routes.get(
        "/status",
        summary="Counts over all works",
        dependencies=guards.read,
        responses=counts_reply,
    )
    async def status(request: Request, store: StoreDep) -> dict[str, int]:
        visible = tenancy.visible_pipelines(grant_of(request))
        if visible is None:
            return await store.counts()
        total: dict[str, int] = {}
        for pipeline in sorted(visible):
            for key, count in (await store.counts(pipeline)).items():
                total[key] = total.get(key, 0) + count
        return total

    @routes.get(
        "/status/pipelines",
        summary="Names of the pipelines that hold works",
        dependencies=guards.read,
        responses={**errors(*auth_errors)},
    )
    async def pipelines(request: Request, store: StoreDep) -> list[str]:
        visible = tenancy.visible_pipelines(grant_of(request))
        names = await store.pipelines()
        return names if visible is None else [name for name in names if name in visible]

    @routes.get(
        "/status/details/{pipeline}",
        summary="Counts of one pipeline (all zero when it holds no works)",
        dependencies=guards.read,
        responses={**counts_reply, **errors(*auth_errors, 422)},
    )
    async def details(request: Request, store: StoreDep, pipeline: str) -> dict[str, int]:
        tenancy.check_counts(grant_of(request), pipeline)
        return await store.counts(check_text("path.pipeline", pipeline))

    return routes
