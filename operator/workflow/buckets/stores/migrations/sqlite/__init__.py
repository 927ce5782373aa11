"""The SQLite store's migrations, numbered (see ``workflow.buckets.stores.migrations``).

``migrate`` runs on the store's writer connection in one ``BEGIN IMMEDIATE``
transaction: SQLite takes its write lock at once, so another process opening
the same file waits, then finds every version applied. DDL in SQLite is
transactional, so a migration that fails leaves the database as it was.
Statements are run one by one (``executescript`` would commit first).
"""

from __future__ import annotations

import sqlite3
import time

from workflow.buckets.stores.migrations import VERSIONS_TABLE, log, migrations, pending


def migrate(connection: sqlite3.Connection) -> list[int]:
    """Bring the database to the latest version; the versions applied now."""
    known = migrations("sqlite")
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied REAL NOT NULL)"
        )
        applied = {row[0] for row in connection.execute(f"SELECT version FROM {VERSIONS_TABLE}")}  # noqa: S608
        steps = pending(known, applied, "sqlite")
        for step in steps:
            step.upgrade(connection)
            connection.execute(
                f"INSERT INTO {VERSIONS_TABLE} (version, name, applied) VALUES (?, ?, ?)",  # noqa: S608
                (step.version, step.name, time.time()),
            )
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    if steps:
        log.info("sqlite schema migrated: %s", ", ".join(f"{s.version} {s.name}" for s in steps))
    return [step.version for step in steps]


def run(connection: sqlite3.Connection, script: str) -> None:
    """Run the ``;``-separated statements of ``script`` (none may contain a ``;``)."""
    for statement in script.split(";"):
        if statement.strip():
            connection.execute(statement)


def columns(connection: sqlite3.Connection, table: str) -> set[str]:
    """The column names of ``table``."""
    return {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
