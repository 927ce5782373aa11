"""A database made by the first released schema is migrated on open and keeps every record.

The fixtures below recreate, statement for statement, the schema buckets
first shipped (no ``owner``, no status counts, no per-pipeline view index)
and fill it as that server did. Opening a store on it must apply the
numbered migrations, keep every work exactly, and leave a database the
current code fully works on; on PostgreSQL also with two servers opening it
at the same moment.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import psycopg
import pytest

from workflow.buckets.documents import prepare_deposit, validate_works
from workflow.buckets.stores.base import Store, dump, row_of
from workflow.buckets.stores.migrations import migrations
from workflow.buckets.stores.postgres import PostgresStore
from workflow.buckets.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.integration

#: The SQLite schema of the first release, as it created it.
FIRST_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS works (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    creation REAL NOT NULL,
    site TEXT NOT NULL,
    "user" TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS works_pipeline_status ON works (pipeline, status);
CREATE INDEX IF NOT EXISTS works_status_creation ON works (status, creation);
CREATE INDEX IF NOT EXISTS works_creation_id ON works (creation, id);
CREATE INDEX IF NOT EXISTS works_site ON works (site);
CREATE INDEX IF NOT EXISTS works_user ON works ("user");
CREATE TABLE IF NOT EXISTS queue (
    id TEXT PRIMARY KEY REFERENCES works (id) ON DELETE CASCADE,
    pipeline TEXT NOT NULL,
    priority INTEGER NOT NULL,
    creation REAL NOT NULL,
    site TEXT NOT NULL,
    "user" TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_claim ON queue (pipeline, priority DESC, creation, id);
"""

#: The PostgreSQL schema of the first release, as it created it.
FIRST_POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS works (
    id text COLLATE "C" PRIMARY KEY,
    pipeline text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL,
    priority smallint NOT NULL,
    creation double precision NOT NULL,
    site text COLLATE "C" NOT NULL,
    "user" text COLLATE "C" NOT NULL,
    doc jsonb NOT NULL
) WITH (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);
CREATE INDEX IF NOT EXISTS works_pipeline_status ON works (pipeline, status);
CREATE INDEX IF NOT EXISTS works_status_creation ON works (status, creation);
CREATE INDEX IF NOT EXISTS works_creation_id ON works (creation, id);
CREATE INDEX IF NOT EXISTS works_site ON works (site);
CREATE INDEX IF NOT EXISTS works_user ON works ("user");
CREATE TABLE IF NOT EXISTS queue (
    id text COLLATE "C" PRIMARY KEY REFERENCES works (id) ON DELETE CASCADE,
    pipeline text COLLATE "C" NOT NULL,
    priority smallint NOT NULL,
    creation double precision NOT NULL,
    site text COLLATE "C" NOT NULL,
    "user" text COLLATE "C" NOT NULL
) WITH (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 1000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);
CREATE INDEX IF NOT EXISTS queue_claim ON queue (pipeline, priority DESC, creation, id);
"""

STATUSES = ("queued", "running", "success", "failure")


def old_works() -> list[dict]:
    """Works as the first server stored them: two pipelines, every status, some priorities."""
    works = validate_works(
        [
            {
                "pipeline": f"old-{number % 2}",
                "site": "local",
                "user": "ada",
                "command": ["echo", str(number)],
                "priority": 1 + number % 5,
                "creation": 1_700_000_000.0 + number,
                "tags": [f"t{number % 3}"],
            }
            for number in range(40)
        ],
        for_update=False,
    )
    prepare_deposit(works)
    for number, work in enumerate(works):
        work["status"] = STATUSES[number % len(STATUSES)]
        if work["status"] != "queued":
            work["attempt"], work["start"] = 1, work["creation"] + 1
    return works


def queue_row(work: dict) -> tuple:
    return tuple(work[key] for key in ("id", "pipeline", "priority", "creation", "site", "user"))


@pytest.fixture
def first_sqlite_database(tmp_path: Path) -> tuple[Path, list[dict]]:
    """A SQLite file made and filled by the first release's schema."""
    path, works = tmp_path / "buckets.sqlite3", old_works()
    with sqlite3.connect(path) as connection:
        connection.executescript(FIRST_SQLITE_SCHEMA)
        connection.executemany(
            "INSERT INTO works VALUES (?, ?, ?, ?, ?, ?, ?, ?)", map(row_of, works)
        )
        connection.executemany(
            "INSERT INTO queue VALUES (?, ?, ?, ?, ?, ?)",
            [queue_row(work) for work in works if work["status"] == "queued"],
        )
    return path, works


@pytest.fixture
def first_postgres_database(postgres_database: str) -> tuple[str, list[dict]]:
    """A PostgreSQL database made and filled by the first release's schema."""
    works = old_works()
    with psycopg.connect(postgres_database) as connection:
        connection.execute(FIRST_POSTGRES_SCHEMA)
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO works VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
                [(*row_of(work)[:-1], dump(work)) for work in works],
            )
            cursor.executemany(
                "INSERT INTO queue VALUES (%s, %s, %s, %s, %s, %s)",
                [queue_row(work) for work in works if work["status"] == "queued"],
            )
    return postgres_database, works


async def check_everything_kept_and_working(store: Store, works: list[dict]) -> None:
    """Every old record unchanged, and every operation of today's store working on them."""
    stored = await store.view({}, None, 0, None)
    assert sorted(stored, key=lambda work: work["id"]) == sorted(works, key=lambda w: w["id"])
    counts = await store.counts()
    assert counts == {"total": 40, "queued": 10, "running": 10, "success": 10, "failure": 10}
    assert await store.pipelines() == ["old-0", "old-1"]
    by_pipeline = await store.view({"pipeline": "old-1"}, None, 5, 3)
    expected = sorted((w for w in works if w["pipeline"] == "old-1"), key=lambda w: w["creation"])
    assert [work["id"] for work in by_pipeline] == [work["id"] for work in expected[5:8]]

    claimed = await store.withdraw({"pipeline": {"$in": ["old-0", "old-1"]}})
    assert claimed is not None
    queued = [work for work in works if work["status"] == "queued"]
    best = max(queued, key=lambda work: (work["priority"], -work["creation"]))
    assert claimed.startswith("{") and best["id"] in claimed

    managed = validate_works(
        [{"pipeline": "new", "site": "local", "user": "op", "status": "running"}], for_update=False
    )
    prepare_deposit(managed, managed=True)
    await store.deposit(managed, "kubernetes-operator")  # the owner column, added since
    assert await store.withdraw({"pipeline": "new"}) is None
    assert (await store.counts("new"))["running"] == 1
    assert await store.requeue_failed() == 10


def test_a_sqlite_database_of_the_first_schema_is_migrated_and_keeps_every_record(
    first_sqlite_database: tuple[Path, list[dict]],
) -> None:
    path, works = first_sqlite_database

    async def scenario() -> None:
        store = SQLiteStore(path)
        await store.open()
        try:
            await check_everything_kept_and_working(store, works)
        finally:
            await store.close()

    asyncio.run(scenario())
    with sqlite3.connect(path) as connection:
        versions = connection.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        indexes = {row[1] for row in connection.execute("PRAGMA index_list(works)")}
    assert [row[0] for row in versions] == [m.version for m in migrations("sqlite")]
    assert "works_pipeline_creation_id" in indexes


def test_a_migrated_sqlite_database_is_not_migrated_again(tmp_path: Path) -> None:
    path = tmp_path / "buckets.sqlite3"

    async def open_and_close() -> None:
        store = SQLiteStore(path)
        await store.open()
        await store.close()

    asyncio.run(open_and_close())
    asyncio.run(open_and_close())
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT version, count(*) FROM schema_migrations GROUP BY 1")
        assert all(count == 1 for _, count in rows)


@pytest.mark.postgres
def test_a_postgres_database_of_the_first_schema_is_migrated_by_two_servers_at_once(
    first_postgres_database: tuple[str, list[dict]],
) -> None:
    dsn, works = first_postgres_database

    async def scenario() -> None:
        stores = [PostgresStore(dsn, pool_size=2) for _ in range(2)]
        await asyncio.gather(*(store.open() for store in stores))
        try:
            await check_everything_kept_and_working(stores[0], works)
        finally:
            await asyncio.gather(*(store.close() for store in stores))

    asyncio.run(scenario())
    with psycopg.connect(dsn) as connection:
        versions = connection.execute("SELECT version FROM schema_migrations ORDER BY 1")
        assert [row[0] for row in versions] == [m.version for m in migrations("postgres")]
        indexes = connection.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'works'")
        assert "works_pipeline_creation_id" in {row[0] for row in indexes}
