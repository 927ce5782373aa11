"""The PostgreSQL store directly, on a fresh database per test: start-up and upkeep.

What the HTTP tests cannot see: several server processes creating the schema
at the same moment, the store vacuuming its claim queue by itself, and the
status counts its triggers keep: seeded for a database that had works
before them, exact after every kind of write, folded when they pile up.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from workflow.buckets.documents import prepare_deposit, validate_works
from workflow.buckets.stores.postgres import (
    COMPACT_COUNTS_ABOVE,
    VACUUM_EVERY_CLAIMS,
    PostgresStore,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_servers_starting_together_create_the_schema_once(postgres_database: str) -> None:
    async def scenario() -> None:
        stores = [PostgresStore(postgres_database, pool_size=2) for _ in range(4)]
        await asyncio.gather(*(store.open() for store in stores))
        await asyncio.gather(*(store.close() for store in stores))

    asyncio.run(scenario())
    with psycopg.connect(postgres_database) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
    assert tables == [("queue",), ("schema_migrations",), ("work_counts",), ("works",)]
    with psycopg.connect(postgres_database) as connection:
        versions = connection.execute("SELECT version, count(*) FROM schema_migrations GROUP BY 1")
        assert {count for _, count in versions} == {1}


def test_the_store_vacuums_its_queue_after_many_claims(postgres_database: str) -> None:
    works = VACUUM_EVERY_CLAIMS + 100
    documents = validate_works(
        [{"pipeline": "upkeep", "site": "local", "user": "ada", "command": ["true"]}] * works,
        for_update=False,
    )
    prepare_deposit(documents)

    async def scenario() -> int:
        store = PostgresStore(postgres_database, pool_size=4)
        await store.open()
        try:
            await store.deposit(documents)
            claimed = 0
            while claimed < works:
                batch = await asyncio.gather(
                    *(store.withdraw({"pipeline": {"$in": ["upkeep"]}}) for _ in range(16))
                )
                claimed += sum(1 for document in batch if document is not None)
            return claimed
        finally:
            await store.close()

    assert asyncio.run(scenario()) == works
    deadline = time.monotonic() + 10
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        while True:
            [(vacuums,)] = connection.execute(
                "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'queue'"
            ).fetchall()
            if vacuums >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        queued = connection.execute("SELECT count(*) FROM queue").fetchone()
    assert vacuums >= 1
    assert queued == (0,)


def _works(count: int, pipeline: str) -> list[dict]:
    documents = validate_works(
        [{"pipeline": pipeline, "site": "local", "user": "ada", "command": ["true"]}] * count,
        for_update=False,
    )
    prepare_deposit(documents)
    return documents


def _counted(connection: psycopg.Connection, pipeline: str | None = None) -> dict[str, int]:
    where, params = ("WHERE pipeline = %s", (pipeline,)) if pipeline else ("", ())
    rows = connection.execute(
        f"SELECT status, count(*) FROM works {where} GROUP BY status",  # noqa: S608 - fixed text
        params,
    ).fetchall()
    counts = dict.fromkeys(("total", "queued", "running", "success", "failure"), 0)
    for status, count in rows:
        counts["total"] += count
        counts[status] += count
    return counts


def test_status_counts_stay_exact_through_every_kind_of_write(postgres_database: str) -> None:
    async def scenario() -> list[dict[str, int]]:
        store = PostgresStore(postgres_database, pool_size=4)
        await store.open()
        try:
            await store.deposit(_works(30, "left") + _works(20, "right"))
            claimed = [await store.withdraw({"pipeline": "left"}) for _ in range(12)]
            import json

            done = [json.loads(text) for text in claimed[:5]]
            for document in done:
                document["status"] = "success"
            moved = json.loads(claimed[5])
            moved.update(status="failure", pipeline="right")
            await store.update([*done, moved])
            await store.delete([document["id"] for document in done[:2]])
            await store.expire_running(time.time() + 10**6)
            await store.requeue_failed()
            return [await store.counts(), await store.counts("left"), await store.counts("right")]
        finally:
            await store.close()

    overall, left, right = asyncio.run(scenario())
    with psycopg.connect(postgres_database) as connection:
        assert overall == _counted(connection)
        assert left == _counted(connection, "left")
        assert right == _counted(connection, "right")
        assert overall["total"] == 48 and overall["success"] == 3


def test_counts_are_seeded_for_works_stored_before_the_counts_existed(
    postgres_database: str,
) -> None:
    async def deposit_then_forget_the_counts() -> None:
        store = PostgresStore(postgres_database, pool_size=2)
        await store.open()
        await store.deposit(_works(7, "old"))
        await store.close()

    asyncio.run(deposit_then_forget_the_counts())
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        # A database from before the counts, and before versioned migrations.
        connection.execute("DROP TABLE work_counts")
        connection.execute("DROP TABLE schema_migrations")

    async def reopen() -> dict[str, int]:
        store = PostgresStore(postgres_database, pool_size=2)
        await store.open()
        try:
            return await store.counts()
        finally:
            await store.close()

    assert asyncio.run(reopen())["queued"] == 7


def test_truncating_the_works_empties_the_counts(postgres_database: str) -> None:
    async def scenario() -> dict[str, int]:
        store = PostgresStore(postgres_database, pool_size=2)
        await store.open()
        try:
            await store.deposit(_works(3, "gone"))
            with psycopg.connect(postgres_database, autocommit=True) as connection:
                connection.execute("TRUNCATE queue, works")
            return await store.counts()
        finally:
            await store.close()

    assert asyncio.run(scenario())["total"] == 0


def test_piled_up_count_changes_are_folded_and_stay_exact(postgres_database: str) -> None:
    async def scenario() -> tuple[dict[str, int], dict[str, int]]:
        store = PostgresStore(postgres_database, pool_size=4)
        await store.open()
        try:
            for _ in range(COMPACT_COUNTS_ABOVE + 10):
                await store.deposit(_works(1, "piled"))
            before = await store.counts()  # starts the folding in the background
        finally:
            await store.close()  # waits for the folding
        again = PostgresStore(postgres_database, pool_size=2)
        await again.open()
        try:
            return before, await again.counts()
        finally:
            await again.close()

    before, after = asyncio.run(scenario())
    assert before == after and after["queued"] == COMPACT_COUNTS_ABOVE + 10
    with psycopg.connect(postgres_database) as connection:
        [(rows,)] = connection.execute("SELECT count(*) FROM work_counts").fetchall()
    assert rows == 1
