"""The PostgreSQL store's migrations, numbered (see ``workflow.buckets.stores.migrations``).

``migrate`` runs them in one transaction that first takes an advisory lock
(``SCHEMA_LOCK``): servers starting together queue on the lock, and each
after the first finds every version applied and changes nothing. DDL in
PostgreSQL is transactional, so a migration that fails leaves the database
as it was.
"""

from __future__ import annotations

import time
from typing import Any

from psycopg import AsyncConnection

from workflow.buckets.stores.migrations import VERSIONS_TABLE, log, migrations, pending

#: Advisory lock key held while migrating, so processes starting together agree.
SCHEMA_LOCK = 0x6275636B657473  # "buckets"


async def migrate(connection: AsyncConnection[Any]) -> list[int]:
    """Bring the database to the latest version; the versions applied now."""
    known = migrations("postgres")
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        await connection.execute(
            f"CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} (version integer PRIMARY KEY, "
            "name text NOT NULL, applied double precision NOT NULL)"
        )
        cursor = await connection.execute(f"SELECT version FROM {VERSIONS_TABLE}")  # noqa: S608
        applied = {row[0] for row in await cursor.fetchall()}
        steps = pending(known, applied, "postgres")
        for step in steps:
            await step.upgrade(connection)
            await connection.execute(
                f"INSERT INTO {VERSIONS_TABLE} (version, name, applied) VALUES (%s, %s, %s)",  # noqa: S608
                (step.version, step.name, time.time()),
            )
    if steps:
        log.info("postgres schema migrated: %s", ", ".join(f"{s.version} {s.name}" for s in steps))
    return [step.version for step in steps]
