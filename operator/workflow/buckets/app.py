"""The buckets HTTP application: ``create_app`` assembles the routers, guards and error replies.

What each route does is in ``workflow.buckets.routes`` (one router per topic),
who may call it in ``guards``, what the API promises in ``openapi``, how errors
are answered in ``error_replies``. The application's state holds what the
routes reach through ``Depends``: the store, the settings and the prepared
withdraw filters.

Beyond the public contract, ``POST /work?owner=<name>`` deposits *managed*
works: records of works their owner (the Kubernetes operator) runs itself.
They keep their status and are never claimed or audited, so no worker runs
them a second time (``openapi.DEPOSIT_DESCRIPTION``; the stores keep them out
of the claim queue).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from workflow import __version__
from workflow.buckets import openapi
from workflow.buckets.auth import Authenticator, load_tokens
from workflow.buckets.error_replies import add_error_handlers
from workflow.buckets.guards import Guards
from workflow.buckets.limits import BodyLimitMiddleware
from workflow.buckets.prepared import PreparedWithdraws
from workflow.buckets.routes import routers
from workflow.buckets.settings import BucketsSettings
from workflow.buckets.stores import Store, make_store


def create_app(settings: BucketsSettings | None = None, *, store: Store | None = None) -> FastAPI:
    """The buckets ASGI application for ``settings`` (default: from the environment)."""
    settings = settings or BucketsSettings()
    authenticator = make_authenticator(settings)
    store = store or make_store(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        try:
            yield
        finally:
            await store.close()

    # With tokens the docs are served by ``openapi.serve_docs_guarded``, behind the read scope.
    open_docs = not authenticator.enabled
    app = FastAPI(
        title="buckets",
        version=__version__,
        summary="The work queue of workflow.",
        description=openapi.DESCRIPTION,
        lifespan=lifespan,
        openapi_url=openapi.OPENAPI_PATH if open_docs else None,
        docs_url=openapi.DOCS_PATH if open_docs else None,
        redoc_url=openapi.REDOC_PATH if open_docs else None,
        openapi_tags=openapi.TAGS,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.withdraws = PreparedWithdraws()
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    add_error_handlers(app)
    guards = Guards.of(authenticator)
    for router in routers(guards):
        app.include_router(router)
    openapi.add_body_schemas(app)
    if authenticator.enabled:
        openapi.serve_docs_guarded(app, guards.read)
    return app


def make_authenticator(settings: BucketsSettings) -> Authenticator:
    """The token checker of ``settings``: its tokens file, inline tokens and signing key."""
    inline = settings.tokens.get_secret_value() if settings.tokens else None
    signing_key = settings.signing_key.get_secret_value() if settings.signing_key else None
    return Authenticator(
        load_tokens(settings.tokens_file, inline),
        signing_key=signing_key,
        leeway=settings.token_leeway_seconds,
    )
