"""Housekeeping the audit daemon runs: re-queue failed works, fail expired, count stale."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path

from workflow.buckets.guards import Guards
from workflow.buckets.openapi import errors
from workflow.buckets.routes.depends import StoreDep


def router(guards: Guards) -> APIRouter:
    """The audit routes, behind ``guards`` (they act on every pipeline)."""
    routes = APIRouter(tags=["audit"])
    auth_errors = guards.auth_errors

    @routes.get(
        "/audit/failed",
        summary="Re-queue failed works with attempts left (attempt < 1 + retries)",
        dependencies=guards.write_all,
        responses={**errors(*auth_errors)},
        response_description="How many works were re-queued.",
    )
    async def audit_failed(store: StoreDep) -> int:
        return await store.requeue_failed()

    @routes.get(
        "/audit/expired",
        summary="Fail running works whose start + timeout has passed",
        dependencies=guards.write_all,
        responses={**errors(*auth_errors)},
        response_description="How many works were marked failed.",
    )
    async def audit_expired(store: StoreDep) -> int:
        return await store.expire_running(time.time())

    @routes.get(
        "/audit/stale/{days}",
        summary="Count works created more than `days` days ago (deletes nothing)",
        dependencies=guards.read_all,
        responses={**errors(*auth_errors, 422)},
        response_description="How many works are older than that.",
    )
    async def audit_stale(
        store: StoreDep,
        days: Annotated[
            float,
            Path(ge=0, le=1_000_000, allow_inf_nan=False, description="Age in days, e.g. 7.0."),
        ],
    ) -> int:
        return await store.count_created_before(time.time() - days * 86_400)

    return routes
