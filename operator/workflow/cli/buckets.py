"""``workflow buckets``: run the buckets service and look into a running one.

``serve`` starts the HTTP API (settings from options, then
``WORKFLOW_BUCKETS_*`` variables, then defaults). ``ls`` prints the work
counts of every pipeline (or the named ones) of a running server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.table import Table

from workflow import WORKFLOW_TOKEN_VARIABLES


@click.group()
def buckets() -> None:
    """The buckets work queue: serve it, or look into a running one."""


@buckets.command()
@click.option("--host", help="Address to listen on.  [default: 127.0.0.1]")
@click.option("--port", type=int, help="TCP port to listen on.  [default: 8004]")
@click.option(
    "--database",
    help="'sqlite:///path' or a 'postgresql://' DSN.  "
    "[default: ~/.local/share/workflow/buckets.sqlite3]",
)
@click.option(
    "--tokens-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File of access tokens (YAML, or 'name scopes token' lines); none: no auth.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes (more than one needs PostgreSQL).",
)
@click.option(
    "--access-log/--no-access-log", default=True, show_default=True, help="Log every request."
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
def serve(
    host: str | None,
    port: int | None,
    database: str | None,
    tokens_file: Path | None,
    workers: int,
    access_log: bool,
    log_level: str,
) -> None:
    """Serve the buckets HTTP API until interrupted."""
    from pydantic import ValidationError

    from workflow.buckets.auth import TokenConfigError, load_tokens
    from workflow.buckets.serving import serve as run
    from workflow.buckets.settings import BucketsSettings

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "database": database,
        "tokens_file": tokens_file,
    }
    try:
        settings = BucketsSettings(**{k: v for k, v in options.items() if v is not None})
        tokens = load_tokens(
            settings.tokens_file, settings.tokens.get_secret_value() if settings.tokens else None
        )
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise click.UsageError(problems) from None
    except TokenConfigError as error:
        raise click.UsageError(str(error)) from None
    if workers > 1 and settings.store_kind != "postgres":
        raise click.UsageError(
            "--workers above 1 needs a PostgreSQL database (SQLite allows one writer)"
        )
    auth = f"{len(tokens)} tokens" if tokens else "no tokens"
    if settings.signing_key is not None:
        auth += " and signed work tokens"
    elif not tokens:
        auth += " (every request is accepted)"
    console = Console(stderr=True)
    console.print(
        f"buckets: serving [bold]http://{settings.host}:{settings.port}[/] "
        f"with the {settings.store_kind} store at {settings.safe_database}; "
        f"{auth}; {workers} worker{'s' if workers > 1 else ''}",
        highlight=False,
        soft_wrap=True,
    )
    run(settings, workers=workers, access_log=access_log, log_level=log_level)


def _default_url() -> str:
    from workflow import DEFAULT_WORKSPACE_PATH
    from workflow.definitions.workspace import WorkspaceError, read_workspace

    path = os.environ.get("WORKFLOW_HTTP_WORKSPACE") or os.environ.get("WORKFLOW_WORKSPACE")
    try:
        urls = read_workspace(path or DEFAULT_WORKSPACE_PATH).http.baseurls.candidates("buckets")
    except WorkspaceError:
        urls = []
    return urls[0] if urls else "http://127.0.0.1:8004"


@buckets.command(name="ls")
@click.argument("pipelines", nargs=-1)
@click.option(
    "--url",
    envvar="WORKFLOW_BUCKETS_URL",
    help="Server to ask.  [default: the workspace's buckets URL, else http://127.0.0.1:8004]",
)
@click.option(
    "--token",
    envvar=list(WORKFLOW_TOKEN_VARIABLES),
    help="Access token (WORKFLOW_HTTP_TOKEN or WORKFLOW_TOKEN).",
)
def list_pipelines(pipelines: tuple[str, ...], url: str | None, token: str | None) -> None:
    """Print work counts by status for every pipeline, or for PIPELINES."""
    url = (url or _default_url()).rstrip("/")
    headers = {"x-access-token": token} if token else {}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            names = list(pipelines) or _json(client.get("/status/pipelines"))
            rows = [(name, _json(client.get(f"/status/details/{name}"))) for name in names]
    except httpx.HTTPError as error:
        raise click.ClickException(f"buckets at {url} did not answer: {error}") from None
    # Imported here: the server's modules are not needed by the other commands (the
    # operator's process would carry them for nothing).
    from workflow.buckets.stores.base import COUNT_KEYS

    table = Table(title=f"buckets at {url}")
    table.add_column("pipeline")
    for key in COUNT_KEYS:
        table.add_column(key, justify="right")
    for name, counts in rows:
        table.add_row(name, *(str(counts.get(key, 0)) for key in COUNT_KEYS))
    Console().print(table)


def _json(reply: httpx.Response) -> Any:
    if reply.status_code >= 400:
        try:
            detail = reply.json().get("detail", reply.text)
        except ValueError:
            detail = reply.text
        raise click.ClickException(f"{reply.request.method} {reply.request.url}: {detail}")
    return reply.json()
