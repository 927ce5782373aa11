"""The buckets API's routes, one router per topic, in the order the API documents them.

Each module's ``router(guards)`` builds its ``APIRouter``: the token checks
(``workflow.buckets.guards``) depend on whether tokens are configured, and so
do the 401/403 replies the OpenAPI document lists; everything else a route
needs (the store, the settings) it reaches through ``Depends`` on the
application's state (``workflow.buckets.routes.depends``).
"""

from __future__ import annotations

import typing

from workflow.buckets.routes import audit, service, status, works

if typing.TYPE_CHECKING:
    from fastapi import APIRouter

    from workflow.buckets.guards import Guards


def routers(guards: Guards) -> list[APIRouter]:
    """Every router of the API: service, works, status, audit."""
    return [module.router(guards) for module in (service, works, status, audit)]


__all__ = ["routers"]
