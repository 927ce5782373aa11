"""The PostgreSQL store directly, on a fresh database per test: start-up and upkeep.

What the HTTP tests cannot see: several server processes creating the schema
at the same moment, and the store vacuuming its claim queue by itself.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from workflow.buckets.documents import prepare_deposit, validate_works
from workflow.buckets.stores.postgres import VACUUM_EVERY_CLAIMS, PostgresStore

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
    assert tables == [("queue",), ("works",)]


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
