"""The production store: PostgreSQL through psycopg 3's async connection pool.

Many server processes (and replicas) can share one database. A claim is a
single statement: it deletes the best ``queue`` row with ``FOR UPDATE SKIP
LOCKED`` and marks the work running, so concurrent withdrawers never wait
for each other and never receive the same work. The ``queue`` table holds
only waiting works and is tuned to be vacuumed eagerly, so the claim rate
does not decay as claimed rows pile up as dead index entries.

Lock order is always ``queue`` row before ``works`` row (claims, updates and
deletes alike), which keeps a claim and an update of the same work from
deadlocking.

Managed works (``owner`` set, see ``base``) are inserted by
``DEPOSIT_MANAGED``, which writes no ``queue`` row; ``ENQUEUE``,
``REQUEUE_FAILED`` and ``EXPIRE_RUNNING`` all require ``owner IS NULL``, so
the claim statements need no check of their own.

The schema is made and upgraded by the numbered migrations in
``migrations/postgres`` when the store opens.

Status counts come from ``work_counts``, which statement-level triggers on
``works`` keep exact (see ``PostgresStore.counts``): counting a million works
on every ``/status`` would take about 100 ms.

Views page through one pipeline in view order (``delete_many`` and the
transfer daemon do): ``works_pipeline_creation_id`` serves them from the
index alone, skipped works included. Without it a view of one pipeline out
of ten walked ``works_creation_id`` and read every row to test its pipeline:
skipping 5,000 of them at 1M works took 23 ms of database time at best
(98 ms when each skipped document was also converted, see ``VIEW_PAGE``),
against 1.4 ms with the index. Opening a database made before the index
builds it once (migration 4: about 2 s per million works, writes waiting
meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from workflow.buckets.queries import Clause, PostgresDialect, Projection, Target, translate
from workflow.buckets.stores.base import (
    QUEUE_COLUMNS,
    WORK_COLUMNS,
    Claimer,
    StaleWorksError,
    Store,
    UnknownWorksError,
    counts_of,
    progress,
    row_of,
    split_pipelines,
    stale_works,
)
from workflow.buckets.stores.claiming import Claims
from workflow.buckets.stores.migrations.postgres import migrate

#: Claims after which a server process vacuums the queue itself (see ``_maybe_vacuum``).
VACUUM_EVERY_CLAIMS = 5_000

#: Folds the count changes into one row per pipeline and status (safe to run concurrently).
COMPACT_COUNTS = """
WITH folded AS (DELETE FROM work_counts RETURNING pipeline, status, n)
INSERT INTO work_counts (pipeline, status, n)
SELECT pipeline, status, sum(n) FROM folded GROUP BY pipeline, status HAVING sum(n) <> 0
"""
#: Rows of ``work_counts`` above which reading the counts folds them in the background.
COMPACT_COUNTS_ABOVE = 1_000

#: Inserts ordinary works (owner NULL, status queued) and queues the new ones.
DEPOSIT = """
WITH input AS (
    SELECT * FROM unnest(
        %s::text[], %s::text[], %s::text[], %s::int2[], %s::float8[], %s::text[], %s::text[],
        %s::text[]
    ) AS t (id, pipeline, status, priority, creation, site, "user", doc)
), inserted AS (
    INSERT INTO works (id, pipeline, status, priority, creation, site, "user", doc)
    SELECT id, pipeline, status, priority, creation, site, "user", doc::jsonb FROM input
    ON CONFLICT (id) DO NOTHING
    RETURNING id, pipeline, priority, creation, site, "user"
)
INSERT INTO queue (id, pipeline, priority, creation, site, "user")
SELECT id, pipeline, priority, creation, site, "user" FROM inserted
"""
#: Inserts works managed by an owner (the last parameter), with their own status; never queued.
DEPOSIT_MANAGED = """
INSERT INTO works (id, pipeline, status, priority, creation, site, "user", doc, owner)
SELECT id, pipeline, status, priority, creation, site, "user", doc::jsonb, %s::text
FROM unnest(
    %s::text[], %s::text[], %s::text[], %s::int2[], %s::float8[], %s::text[], %s::text[],
    %s::text[]
) AS t (id, pipeline, status, priority, creation, site, "user", doc)
ON CONFLICT (id) DO NOTHING
"""
#: Claims up to n works of one filter, in one statement (see ``claiming``).
CLAIM = """
WITH claimed AS (
    DELETE FROM queue WHERE id = ANY(ARRAY(
        SELECT q.id FROM queue AS q{join} WHERE {where}
        ORDER BY q.priority DESC, q.creation, q.id
        LIMIT %s FOR UPDATE OF q SKIP LOCKED
    ))
    RETURNING id, priority, creation
)
UPDATE works AS w SET status = 'running', doc = w.doc || jsonb_build_object(
    'status', 'running', 'start', %s::float8,
    'attempt', COALESCE((w.doc ->> 'attempt')::numeric, 0) + 1)
FROM claimed WHERE w.id = claimed.id
RETURNING w.doc::text, claimed.priority, claimed.creation, claimed.id
"""
#: The same across several pipelines: the best candidates of each, then the best of those.
CLAIM_ACROSS = """
WITH claimed AS (
    DELETE FROM queue WHERE id = ANY(ARRAY(
        SELECT c.id FROM unnest(%s::text[]) AS p (name)
        CROSS JOIN LATERAL (
            SELECT q.id, q.priority, q.creation FROM queue AS q{join}
            WHERE q.pipeline = p.name AND {where}
            ORDER BY q.priority DESC, q.creation, q.id
            LIMIT %s FOR UPDATE OF q SKIP LOCKED
        ) AS c
        ORDER BY c.priority DESC, c.creation, c.id
        LIMIT %s
    ))
    RETURNING id, priority, creation
)
UPDATE works AS w SET status = 'running', doc = w.doc || jsonb_build_object(
    'status', 'running', 'start', %s::float8,
    'attempt', COALESCE((w.doc ->> 'attempt')::numeric, 0) + 1)
FROM claimed WHERE w.id = claimed.id
RETURNING w.doc::text, claimed.priority, claimed.creation, claimed.id
"""
UPDATE_WORKS = """
UPDATE works AS w SET pipeline = u.pipeline, status = u.status, priority = u.priority,
    creation = u.creation, site = u.site, "user" = u."user", doc = u.doc::jsonb
FROM unnest(
    %s::text[], %s::text[], %s::text[], %s::int2[], %s::float8[], %s::text[], %s::text[],
    %s::text[]
) AS u (id, pipeline, status, priority, creation, site, "user", doc)
WHERE w.id = u.id
"""
#: Queues (or refreshes the queue rows of) the listed works that are queued and unmanaged.
ENQUEUE = """
INSERT INTO queue (id, pipeline, priority, creation, site, "user")
SELECT id, pipeline, priority, creation, site, "user" FROM works
WHERE id = ANY(%s) AND status = 'queued' AND owner IS NULL
ON CONFLICT (id) DO UPDATE SET pipeline = EXCLUDED.pipeline, priority = EXCLUDED.priority,
    creation = EXCLUDED.creation, site = EXCLUDED.site, "user" = EXCLUDED."user"
"""
#: Locks the listed works in id order; how far each is: id, attempt, status, stop.
LOCK_PROGRESS = """
SELECT id, (doc ->> 'attempt')::numeric::int, status, doc ->> 'stop' FROM works
WHERE id = ANY(%s) ORDER BY id FOR UPDATE
"""
REQUEUE_FAILED = """
WITH requeued AS (
    UPDATE works SET status = 'queued', doc = doc || '{"status": "queued"}'::jsonb
    WHERE status = 'failure' AND owner IS NULL
      AND COALESCE((doc ->> 'attempt')::numeric, 0) < 1 + COALESCE((doc ->> 'retries')::numeric, 0)
    RETURNING id, pipeline, priority, creation, site, "user"
), enqueued AS (
    INSERT INTO queue (id, pipeline, priority, creation, site, "user")
    SELECT * FROM requeued ON CONFLICT (id) DO NOTHING
)
SELECT count(*) FROM requeued
"""
EXPIRE_RUNNING = """
UPDATE works SET status = 'failure', doc = doc || '{"status": "failure"}'::jsonb
WHERE status = 'running' AND owner IS NULL
  AND (doc ->> 'start')::float8 + (doc ->> 'timeout')::float8 < %s
"""
PIPELINES = """
WITH RECURSIVE names (name) AS (
    SELECT min(pipeline) FROM works
    UNION ALL
    SELECT (SELECT min(pipeline) FROM works WHERE pipeline > names.name)
    FROM names WHERE names.name IS NOT NULL
)
SELECT name FROM names WHERE name IS NOT NULL
"""


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows turned into one list per column, for ``unnest``."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 8


#: The first page of a view: the selected documents of the matching works, in view order.
VIEW = """
SELECT {selected} FROM works WHERE {where} ORDER BY creation, id LIMIT %s
"""
#: A later page of a view, as a "deferred join": the skipped works are found
#: and counted by id alone (from an index when one covers the filter), and
#: only the page's works have their documents read and converted. Selecting
#: the documents directly converts every skipped one as well, since OFFSET
#: discards rows only after they are built: at 1M works, 5,000 skipped out
#: of one pipeline cost 98 ms that way against 40 ms (EXPLAIN ANALYZE on a
#: busy machine, before ``works_pipeline_creation_id``), the difference
#: being 5,000 documents turned into text for nothing.
VIEW_PAGE = """
SELECT {selected} FROM (
    SELECT id, creation FROM works WHERE {where} ORDER BY creation, id LIMIT %s OFFSET %s
) AS page JOIN works USING (id)
ORDER BY page.creation, page.id
"""


class PostgresStore(Store):
    """Works in PostgreSQL (see the module docstring)."""

    kind = "postgres"
    dialect = PostgresDialect()

    def __init__(self, dsn: str, pool_size: int = 10) -> None:
        self.dsn = dsn
        self.pool = AsyncConnectionPool(
            dsn,
            min_size=min(2, pool_size),
            max_size=pool_size,
            kwargs={"autocommit": True},
            open=False,
            name="buckets",
        )
        self._claims = 0
        self._vacuum: asyncio.Task[None] | None = None
        self._compaction: asyncio.Task[None] | None = None
        self.claims = Claims(max_batch=32, max_in_flight=max(1, min(2, pool_size // 2)))

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)
        async with self.pool.connection() as connection:
            await migrate(connection)

    async def close(self) -> None:
        await self.claims.drain()
        for task in (self._vacuum, self._compaction):
            if task is not None:
                with contextlib.suppress(Exception):
                    await task
        await self.pool.close()

    async def ping(self) -> None:
        async with self.pool.connection() as connection:
            await connection.execute("SELECT 1")

    def _translate(self, query: Mapping[str, Any], *, queue: bool) -> Clause:
        if queue:
            return translate(query, self.dialect, Target(QUEUE_COLUMNS, "w.doc"))
        return translate(query, self.dialect, Target(WORK_COLUMNS, "doc"))

    # Writes ---------------------------------------------------------------------------
    async def deposit(
        self, documents: Sequence[Mapping[str, Any]], owner: str | None = None
    ) -> None:
        unique: dict[str, Mapping[str, Any]] = {}
        for document in documents:
            unique.setdefault(document["id"], document)
        if not unique:
            return
        columns = _columns([row_of(document) for document in unique.values()])
        async with self.pool.connection() as connection:
            if owner is None:
                await connection.execute(DEPOSIT, columns)
            else:
                await connection.execute(DEPOSIT_MANAGED, [owner, *columns])

    def prepare_withdraw(self, query: Mapping[str, Any]) -> Claimer:
        split = split_pipelines(query)
        clause = self._translate(split[1] if split else query, queue=True)
        join = " JOIN works AS w ON w.id = q.id" if clause.uses_document else ""
        if split:
            sql = CLAIM_ACROSS.format(join=join, where=clause.sql)
        else:
            sql = CLAIM.format(join=join, where=clause.sql)

        async def claim_many(count: int) -> list[str]:
            if split:
                params = [split[0], *clause.params, count, count, time.time()]
            else:
                params = [*clause.params, count, time.time()]
            async with self.pool.connection() as connection:
                cursor = await connection.execute(sql, params)
                rows = await cursor.fetchall()
            self._claimed(len(rows))
            rows.sort(key=lambda row: (-row[1], row[2], row[3]))
            return [row[0] for row in rows]

        key = (sql, json.dumps([split[0] if split else None, clause.params], default=str))
        return functools.partial(self.claims.claim, key, claim_many)

    def _claimed(self, count: int) -> None:
        before = self._claims
        self._claims += count
        if before // VACUUM_EVERY_CLAIMS != self._claims // VACUUM_EVERY_CLAIMS:
            self._maybe_vacuum()

    def _maybe_vacuum(self) -> None:
        """Vacuum the queue in the background after many claims.

        Autovacuum wakes only every ``autovacuum_naptime`` (a minute by
        default). Until then every claimed row leaves a dead entry at the head
        of the claim index, and each claim steps over all of them: measured,
        the buffers one claim reads grow from 12 to about 700 over 60,000
        claims, and the claim rate falls with them. A ``VACUUM (SKIP_LOCKED)``
        of the narrow queue table takes tens of milliseconds, brings a claim
        back to about 20 buffers, and never waits for another process doing
        the same.
        """
        if self._vacuum is not None and not self._vacuum.done():
            return

        async def vacuum() -> None:
            async with self.pool.connection() as connection:
                await connection.execute("VACUUM (SKIP_LOCKED) queue")
                await connection.execute(COMPACT_COUNTS)

        self._vacuum = asyncio.get_running_loop().create_task(vacuum())

    async def update(
        self, documents: Sequence[Mapping[str, Any]], *, guarded: bool = False
    ) -> None:
        latest = {document["id"]: document for document in documents}
        if not latest:
            return
        ids = sorted(latest)
        queued = [work_id for work_id in ids if latest[work_id]["status"] == "queued"]
        waiting = [work_id for work_id in ids if latest[work_id]["status"] != "queued"]
        columns = _columns([row_of(latest[work_id]) for work_id in ids])
        async with self.pool.connection() as connection, connection.transaction():
            await self._lock(connection, "queue", ids)
            # The rows stay locked until the commit: what is compared is what is replaced.
            cursor = await connection.execute(LOCK_PROGRESS, (ids,))
            found = {row[0]: progress(*row[1:]) for row in await cursor.fetchall()}
            missing = [work_id for work_id in ids if work_id not in found]
            if missing:
                raise UnknownWorksError([work_id for work_id in latest if work_id in missing])
            if guarded and (stale := stale_works(latest, found)):
                raise StaleWorksError(stale)
            await connection.execute(UPDATE_WORKS, columns)
            if waiting:
                await connection.execute("DELETE FROM queue WHERE id = ANY(%s)", (waiting,))
            if queued:
                # Managed works are skipped: they stay out of the queue whatever their status.
                await connection.execute(ENQUEUE, (queued,))

    @staticmethod
    async def _lock(connection: AsyncConnection[Any], table: str, ids: list[str]) -> set[str]:
        """Lock the rows of ``ids`` in ``table`` in id order; return the ids that exist."""
        sql = {
            "queue": "SELECT id FROM queue WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            "works": "SELECT id FROM works WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
        }[table]
        cursor = await connection.execute(sql, (ids,))
        return {row[0] for row in await cursor.fetchall()}

    async def delete(self, ids: Sequence[str]) -> int:
        listed = sorted(set(ids))
        if not listed:
            return 0
        async with self.pool.connection() as connection, connection.transaction():
            await self._lock(connection, "queue", listed)
            await connection.execute("DELETE FROM queue WHERE id = ANY(%s)", (listed,))
            cursor = await connection.execute("DELETE FROM works WHERE id = ANY(%s)", (listed,))
            return cursor.rowcount

    async def requeue_failed(self) -> int:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(REQUEUE_FAILED)
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def expire_running(self, now: float) -> int:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(EXPIRE_RUNNING, (now,))
            return cursor.rowcount

    # Reads ----------------------------------------------------------------------------
    async def get(self, work_id: str) -> str | None:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT doc::text FROM works WHERE id = %s", (work_id,)
            )
            row = await cursor.fetchone()
        return None if row is None else row[0]

    async def view(
        self,
        query: Mapping[str, Any],
        projection: Projection | None,
        skip: int,
        limit: int | None,
    ) -> list[dict[str, Any]]:
        clause = self._translate(query, queue=False)
        keys = projection.top_keys if projection is not None else None
        if keys is None:
            selected, params = "doc::text", []
        else:
            selected = (
                "COALESCE((SELECT jsonb_object_agg(key, value) FROM jsonb_each(doc) "
                "WHERE key = ANY(%s)), '{}'::jsonb)::text"
            )
            params = [keys]
        # The translated filter holds only fixed SQL and placeholders.
        if skip:
            sql, arguments = VIEW_PAGE, [*params, *clause.params, limit, skip]
        else:
            sql, arguments = VIEW, [*params, *clause.params, limit]
        sql = sql.format(selected=selected, where=clause.sql)
        async with self.pool.connection() as connection:
            cursor = await connection.execute(sql, arguments)
            rows = await cursor.fetchall()
        documents = [json.loads(row[0]) for row in rows]
        if projection is not None:
            return [projection.apply(document) for document in documents]
        return documents

    async def counts(self, pipeline: str | None = None) -> dict[str, int]:
        """Read from ``work_counts``, which triggers on ``works`` keep exact.

        Counting a million works takes longer than a status request may
        (about 100 ms); the triggers add one row of changes per pipeline and
        status per write statement, append-only (so concurrent claims never
        wait on a counter row), and reading folds the rows when they pile up.
        """
        where, params = ("WHERE pipeline = %s", (pipeline,)) if pipeline is not None else ("", ())
        async with self.pool.connection() as connection:
            cursor = await connection.execute(
                f"SELECT status, sum(n)::bigint, count(*) FROM work_counts {where} GROUP BY status",  # noqa: S608
                params,
            )
            rows = await cursor.fetchall()
        if sum(row[2] for row in rows) > COMPACT_COUNTS_ABOVE:
            self._compact_counts()
        return counts_of([(status, total) for status, total, _ in rows])

    def _compact_counts(self) -> None:
        """Fold ``work_counts`` in the background (one at a time per process)."""
        if self._compaction is not None and not self._compaction.done():
            return

        async def compact() -> None:
            async with self.pool.connection() as connection:
                await connection.execute(COMPACT_COUNTS)

        self._compaction = asyncio.get_running_loop().create_task(compact())

    async def pipelines(self) -> list[str]:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(PIPELINES)
            return [row[0] for row in await cursor.fetchall()]

    async def count_created_before(self, moment: float) -> int:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT count(*) FROM works WHERE creation < %s", (moment,)
            )
            row = await cursor.fetchone()
        return int(row[0]) if row else 0
