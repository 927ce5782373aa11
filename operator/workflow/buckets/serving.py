"""Running the buckets service under uvicorn, from settings or the environment.

``serve`` is what ``workflow buckets serve`` and ``python -m workflow.buckets``
call. With one process the application is built here; with several
(PostgreSQL only) each uvicorn worker builds its own from the environment,
which ``serve`` fills from the settings first.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

from workflow.buckets.settings import BucketsSettings

#: Pending connections the listening socket holds. The public client opens a
#: new connection per request, so bursts of withdrawers arrive all at once.
BACKLOG = 4096


def app_from_environment() -> FastAPI:
    """Application factory for uvicorn workers: settings from ``WORKFLOW_BUCKETS_*``."""
    from workflow.buckets.app import create_app

    return create_app(BucketsSettings())


def export(settings: BucketsSettings) -> None:
    """Put ``settings`` into ``WORKFLOW_BUCKETS_*`` variables, for worker processes."""
    for name, value in settings.model_dump(exclude_none=True).items():
        if name == "tokens":
            value = settings.tokens.get_secret_value() if settings.tokens else None
        if value is not None:
            os.environ[f"WORKFLOW_BUCKETS_{name.upper()}"] = str(value)


def serve(
    settings: BucketsSettings,
    *,
    workers: int = 1,
    access_log: bool = True,
    log_level: str = "info",
    **options: Any,
) -> None:
    """Serve the API until interrupted (several worker processes only with PostgreSQL)."""
    import uvicorn

    if workers > 1 and settings.store_kind != "postgres":
        raise ValueError(
            "workers: more than one worker process needs a PostgreSQL database; "
            "SQLite allows one writer, so use one process"
        )
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "backlog": BACKLOG,
        "access_log": access_log,
        "log_level": log_level,
        "server_header": False,
        **options,
    }
    if workers > 1:
        export(settings)
        uvicorn.run(
            "workflow.buckets.serving:app_from_environment",
            factory=True,
            workers=workers,
            **common,
        )
        return
    from workflow.buckets.app import create_app

    uvicorn.run(create_app(settings), **common)
