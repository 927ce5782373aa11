"""The real services benchmarks run against: PostgreSQL, buckets servers, the local cluster.

PostgreSQL is started exactly as the integration tests start it (the
``fixtures.postgres`` helpers: ``initdb`` and ``pg_ctl`` in a temporary
folder on a free 127.0.0.1 port, as an unprivileged user when run as root).
A buckets server is ``bench.server`` (the real service plus an echo route) in
its own process. The local Kubernetes control plane comes from
``localcluster``. Everything is stopped by PID when its context ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.harness import clean_environment, free_port, say, start, stop, use_repo_paths, wait_until


@dataclass
class Postgres:
    """A running PostgreSQL server: admin DSN and fresh databases."""

    server: Any

    def dsn(self, database: str = "postgres") -> str:
        return self.server.dsn(database)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server for the benchmark, stopped and removed at the end."""
    use_repo_paths()
    from fixtures.postgres import PostgresServer, find_binaries

    binaries = find_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl, postgres) were not found")
    base = Path(tempfile.mkdtemp(prefix="workflow-bench-pg-"))
    server = PostgresServer(binaries=binaries, base=base)
    try:
        server.start()
        say(f"PostgreSQL on port {server.port} (pid {server.pid})")
        yield Postgres(server)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Buckets:
    """A running buckets server (``bench.server``)."""

    url: str
    database: str
    store: str
    pid: int

    def reset(self) -> None:
        """Delete every work, in the database itself."""
        if self.store == "sqlite":
            with contextlib.closing(sqlite3.connect(self.database, timeout=30)) as connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("DELETE FROM queue")
                connection.execute("DELETE FROM works")
                connection.execute("COMMIT")
                connection.execute("VACUUM")
        else:
            import psycopg

            with psycopg.connect(self.database, autocommit=True) as connection:
                connection.execute("TRUNCATE queue, works")
                connection.execute("VACUUM ANALYZE queue")
                connection.execute("VACUUM ANALYZE works")


def database_url(store: str, database: str) -> str:
    return f"sqlite:///{database}" if store == "sqlite" else database


@contextlib.contextmanager
def buckets(store: str, database: str, folder: Path, **settings: str) -> Iterator[Buckets]:
    """A buckets server on ``database`` (a SQLite path or a PostgreSQL DSN)."""
    port = free_port()
    env = clean_environment(
        WORKFLOW_BUCKETS_DATABASE=database_url(store, database),
        WORKFLOW_BUCKETS_HOST="127.0.0.1",
        WORKFLOW_BUCKETS_PORT=str(port),
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
        **{f"WORKFLOW_BUCKETS_{key.upper()}": value for key, value in settings.items()},
    )
    log = folder / f"buckets-{store}-{port}.log"
    process = start([sys.executable, "-m", "bench.server"], env=env, log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until(
                lambda: (
                    process.poll() is None
                    and httpx.get(f"{url}/healthz", timeout=2).status_code == 200
                ),
                timeout=60,
                what="buckets answering /healthz",
            )
        except TimeoutError:
            raise RuntimeError(f"buckets did not start:\n{log.read_text()[-3000:]}") from None
        yield Buckets(url=url, database=database, store=store, pid=process.pid)
    finally:
        stop(process)


def open_store(store: str, database: str) -> Any:
    """The store class the server uses, on ``database``, for filling queues in-process."""
    from workflow.buckets.settings import BucketsSettings
    from workflow.buckets.stores import make_store

    return make_store(BucketsSettings(database=database_url(store, database)))


def fill(store: str, database: str, documents: list[dict[str, Any]], batch: int = 1000) -> None:
    """Deposit stored documents through the store's own code (no HTTP)."""

    async def run() -> None:
        target = open_store(store, database)
        await target.open()
        try:
            for begin in range(0, len(documents), batch):
                await target.deposit(documents[begin : begin + batch])
        finally:
            await target.close()

    asyncio.run(run())
