"""The embedded store: one SQLite file, one writer, a few readers.

SQLite allows one writer at a time, so every write runs on a single
connection owned by a single thread (``serial.SerialThread``); the event
loop hands work to that thread and never blocks on the database. Writes
open ``BEGIN IMMEDIATE`` transactions, which also keeps other processes
sharing the file (a second server, a test resetting data) correct: they
wait up to the busy timeout.
The file is in WAL mode, so reads run concurrently on their own threads and
connections and never wait for the writer.

The schema is made and upgraded by the numbered migrations in
``migrations/sqlite`` when the store opens.

Managed works (``owner`` set, see ``base``) are inserted by their own
statement and never enqueued; ``ENQUEUE``, ``REQUEUE_FAILED`` and
``EXPIRE_RUNNING`` all require ``owner IS NULL``, so the claim statements
need no check of their own.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from workflow.buckets.queries import (
    Clause,
    Projection,
    SQLiteDialect,
    Target,
    translate,
)
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
from workflow.buckets.stores.migrations.sqlite import migrate
from workflow.buckets.stores.serial import SerialThread

T = TypeVar("T")

#: Milliseconds a connection waits for another process's write lock.
BUSY_TIMEOUT_MS = 30_000

#: Inserts an ordinary work (owner NULL); ``ENQUEUE`` then queues it.
INSERT_WORK = """
INSERT INTO works (id, pipeline, status, priority, creation, site, "user", doc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING
"""
#: Inserts a work managed by an owner (the last parameter); it is never queued.
INSERT_MANAGED_WORK = """
INSERT INTO works (id, pipeline, status, priority, creation, site, "user", doc, owner)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING
"""
#: Adds queue rows for the listed works that are queued and unmanaged (existing rows are kept).
ENQUEUE = """
INSERT OR IGNORE INTO queue (id, pipeline, priority, creation, site, "user")
SELECT id, pipeline, priority, creation, site, "user" FROM works
WHERE status = 'queued' AND owner IS NULL AND id IN (SELECT value FROM json_each(?))
"""
#: Up to n claimable works of one filter, in claim order.
CLAIM_SELECT = """
SELECT q.id FROM queue AS q{join} WHERE {where}
ORDER BY q.priority DESC, q.creation, q.id LIMIT ?
"""
#: The best candidates of one pipeline; CLAIM_ACROSS takes the best of several.
CLAIM_PROBE = """
SELECT * FROM (
    SELECT q.id, q.priority, q.creation FROM queue AS q{join}
    WHERE q.pipeline = ? AND {where}
    ORDER BY q.priority DESC, q.creation, q.id LIMIT ?
)
"""
CLAIM_ACROSS = """
SELECT id FROM ({probes}) ORDER BY priority DESC, creation, id LIMIT ?
"""
MARK_RUNNING = """
UPDATE works SET status = 'running', doc = json_set(
    doc, '$.status', 'running', '$.start', ?,
    '$.attempt', COALESCE(json_extract(doc, '$.attempt'), 0) + 1)
WHERE id IN (SELECT value FROM json_each(?))
RETURNING id, doc
"""
UPDATE_WORK = """
UPDATE works SET pipeline = ?, status = ?, priority = ?, creation = ?, site = ?, "user" = ?, doc = ?
WHERE id = ?
"""
#: How far each listed work is: id, attempt, status, stop (see ``base.progress``).
STORED_PROGRESS = """
SELECT id, json_extract(doc, '$.attempt'), status, json_extract(doc, '$.stop') FROM works
WHERE id IN (SELECT value FROM json_each(?))
"""
REQUEUE_FAILED = """
UPDATE works SET status = 'queued', doc = json_set(doc, '$.status', 'queued')
WHERE status = 'failure' AND owner IS NULL
  AND COALESCE(json_extract(doc, '$.attempt'), 0) < 1 + COALESCE(json_extract(doc, '$.retries'), 0)
RETURNING id
"""
EXPIRE_RUNNING = """
UPDATE works SET status = 'failure', doc = json_set(doc, '$.status', 'failure')
WHERE status = 'running' AND owner IS NULL
  AND json_extract(doc, '$.start') + json_extract(doc, '$.timeout') < ?
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


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, busy timeout set."""
    connection = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA foreign_keys = ON")
    return connection


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back if anything raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


class SQLiteStore(Store):
    """Works in a SQLite file (see the module docstring for the threading model)."""

    kind = "sqlite"
    dialect = SQLiteDialect()

    def __init__(self, path: Path, readers: int = 4) -> None:
        self.path = Path(path)
        self._writer = SerialThread("buckets-sqlite-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="buckets-sqlite-reader")
        self._write_connection: sqlite3.Connection | None = None
        self._local = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.claims = Claims(max_batch=32, max_in_flight=1)

    # Plumbing -------------------------------------------------------------------------
    async def _write(self, function: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            assert self._write_connection is not None, "the store is not open"
            return function(self._write_connection)

        return await self._writer.run(run)

    async def _read(self, function: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = connect(self.path)
                connection.execute("PRAGMA query_only = ON")
                self._local.connection = connection
                with self._lock:
                    self._reader_connections.append(connection)
            return function(connection)

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def create() -> sqlite3.Connection:
            connection = connect(self.path)
            migrate(connection)
            return connection

        self._writer.start()
        self._write_connection = await self._writer.run(create)

    async def close(self) -> None:
        await self.claims.drain()

        def close_writer() -> None:
            if self._write_connection is not None:
                self._write_connection.close()
                self._write_connection = None

        if self._write_connection is not None:
            await self._writer.run(close_writer)
        self._readers.shutdown(wait=True)
        self._writer.stop()
        with self._lock:
            for connection in self._reader_connections:
                connection.close()
            self._reader_connections.clear()

    async def ping(self) -> None:
        await self._read(lambda connection: connection.execute("SELECT 1").fetchone())

    def _translate(self, query: Mapping[str, Any], *, queue: bool) -> Clause:
        if queue:
            return translate(query, self.dialect, Target(QUEUE_COLUMNS, "w.doc"))
        return translate(query, self.dialect, Target(WORK_COLUMNS, "doc"))

    # Writes -----------------------------------------------------------------------------
    async def deposit(
        self, documents: Sequence[Mapping[str, Any]], owner: str | None = None
    ) -> None:
        rows = [row_of(document) for document in documents]
        ids = json.dumps([row[0] for row in rows])

        def insert(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                connection.executemany(INSERT_WORK, rows)
                connection.execute(ENQUEUE, (ids,))

        def insert_managed(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                connection.executemany(INSERT_MANAGED_WORK, [(*row, owner) for row in rows])

        if rows:
            await self._write(insert if owner is None else insert_managed)

    def prepare_withdraw(self, query: Mapping[str, Any]) -> Claimer:
        split = split_pipelines(query)
        clause = self._translate(split[1] if split else query, queue=True)
        join = " JOIN works AS w ON w.id = q.id" if clause.uses_document else ""
        if split:
            probe = CLAIM_PROBE.format(join=join, where=clause.sql)
            select = CLAIM_ACROSS.format(probes=" UNION ALL ".join([probe] * len(split[0])))
        else:
            select = CLAIM_SELECT.format(join=join, where=clause.sql)

        def claim(connection: sqlite3.Connection, count: int) -> list[str]:
            if split:
                params = [v for name in split[0] for v in (name, *clause.params, count)]
                params.append(count)
            else:
                params = [*clause.params, count]
            with transaction(connection):
                ids = [row[0] for row in connection.execute(select, params)]
                if not ids:
                    return []
                listed = json.dumps(ids)
                connection.execute(
                    "DELETE FROM queue WHERE id IN (SELECT value FROM json_each(?))", (listed,)
                )
                documents = dict(connection.execute(MARK_RUNNING, (time.time(), listed)).fetchall())
            return [documents[work_id] for work_id in ids]

        async def claim_many(count: int) -> list[str]:
            return await self._write(lambda connection: claim(connection, count))

        key = (select, json.dumps([split[0] if split else None, clause.params], default=str))
        return functools.partial(self.claims.claim, key, claim_many)

    async def update(
        self, documents: Sequence[Mapping[str, Any]], *, guarded: bool = False
    ) -> None:
        latest = {document["id"]: document for document in documents}
        rows = [(*row_of(doc)[1:], work_id) for work_id, doc in latest.items()]
        ids = json.dumps(list(latest))

        def replace(connection: sqlite3.Connection) -> None:
            # BEGIN IMMEDIATE holds the write lock from here: what is read is what is replaced.
            with transaction(connection):
                found = {
                    row[0]: progress(*row[1:])
                    for row in connection.execute(STORED_PROGRESS, (ids,))
                }
                missing = [work_id for work_id in latest if work_id not in found]
                if missing:
                    raise UnknownWorksError(missing)
                if guarded and (stale := stale_works(latest, found)):
                    raise StaleWorksError(stale)
                connection.executemany(UPDATE_WORK, rows)
                connection.execute(
                    "DELETE FROM queue WHERE id IN (SELECT value FROM json_each(?))", (ids,)
                )
                # Managed works are skipped: they stay out of the queue whatever their status.
                connection.execute(ENQUEUE, (ids,))

        if rows:
            await self._write(replace)

    async def delete(self, ids: Sequence[str]) -> int:
        listed = json.dumps(list(ids))

        def remove(connection: sqlite3.Connection) -> int:
            with transaction(connection):
                connection.execute(
                    "DELETE FROM queue WHERE id IN (SELECT value FROM json_each(?))", (listed,)
                )
                return connection.execute(
                    "DELETE FROM works WHERE id IN (SELECT value FROM json_each(?))", (listed,)
                ).rowcount

        return await self._write(remove) if ids else 0

    async def requeue_failed(self) -> int:
        def requeue(connection: sqlite3.Connection) -> int:
            with transaction(connection):
                ids = [row[0] for row in connection.execute(REQUEUE_FAILED).fetchall()]
                if ids:
                    connection.execute(ENQUEUE, (json.dumps(ids),))
                return len(ids)

        return await self._write(requeue)

    async def expire_running(self, now: float) -> int:
        def expire(connection: sqlite3.Connection) -> int:
            with transaction(connection):
                return connection.execute(EXPIRE_RUNNING, (now,)).rowcount

        return await self._write(expire)

    # Reads -----------------------------------------------------------------------------
    async def get(self, work_id: str) -> str | None:
        def fetch(connection: sqlite3.Connection) -> str | None:
            row = connection.execute("SELECT doc FROM works WHERE id = ?", (work_id,)).fetchone()
            return None if row is None else row[0]

        return await self._read(fetch)

    async def view(
        self,
        query: Mapping[str, Any],
        projection: Projection | None,
        skip: int,
        limit: int | None,
    ) -> list[dict[str, Any]]:
        clause = self._translate(query, queue=False)
        # The translated filter holds only fixed SQL and placeholders.
        sql = f"SELECT doc FROM works WHERE {clause.sql} ORDER BY creation, id LIMIT ? OFFSET ?"  # noqa: S608
        params = [*clause.params, -1 if limit is None else limit, skip]

        def select(connection: sqlite3.Connection) -> list[dict[str, Any]]:
            documents = [json.loads(row[0]) for row in connection.execute(sql, params)]
            if projection is not None:
                return [projection.apply(document) for document in documents]
            return documents

        return await self._read(select)

    async def counts(self, pipeline: str | None = None) -> dict[str, int]:
        params: tuple[str, ...] = ()
        if pipeline is None:
            sql = "SELECT status, count(*) FROM works GROUP BY status"
        else:
            sql = "SELECT status, count(*) FROM works WHERE pipeline = ? GROUP BY status"
            params = (pipeline,)
        rows = await self._read(lambda connection: connection.execute(sql, params).fetchall())
        return counts_of(rows)

    async def pipelines(self) -> list[str]:
        rows = await self._read(lambda connection: connection.execute(PIPELINES).fetchall())
        return [row[0] for row in rows]

    async def count_created_before(self, moment: float) -> int:
        row = await self._read(
            lambda connection: connection.execute(
                "SELECT count(*) FROM works WHERE creation < ?", (moment,)
            ).fetchone()
        )
        return int(row[0])
