"""Version 3: ``work_counts``, exact status counts kept by statement-level triggers.

Counting a million works on every ``/status`` would take about 100 ms (see
``PostgresStore.counts``). A database that had works before this table is
seeded with their counts; creating the triggers locks ``works`` against
writes until the migration commits, so no write falls between the two.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

TABLE = """
CREATE TABLE work_counts (
    pipeline text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL,
    n bigint NOT NULL
);
CREATE INDEX work_counts_pipeline ON work_counts (pipeline);
"""
TRIGGERS = """
CREATE OR REPLACE FUNCTION buckets_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO work_counts (pipeline, status, n)
    SELECT pipeline, status, count(*) FROM new_rows GROUP BY pipeline, status;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION buckets_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO work_counts (pipeline, status, n)
    SELECT pipeline, status, -count(*) FROM old_rows GROUP BY pipeline, status;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION buckets_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO work_counts (pipeline, status, n)
    SELECT pipeline, status, sum(n) FROM (
        SELECT pipeline, status, 1 AS n FROM new_rows
        UNION ALL SELECT pipeline, status, -1 FROM old_rows
    ) AS changes GROUP BY pipeline, status HAVING sum(n) <> 0;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION buckets_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM work_counts;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER works_count_inserted AFTER INSERT ON works
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION buckets_count_inserted();
CREATE OR REPLACE TRIGGER works_count_deleted AFTER DELETE ON works
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION buckets_count_deleted();
CREATE OR REPLACE TRIGGER works_count_updated AFTER UPDATE ON works
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION buckets_count_updated();
CREATE OR REPLACE TRIGGER works_count_truncated AFTER TRUNCATE ON works
    FOR EACH STATEMENT EXECUTE FUNCTION buckets_count_truncated();
"""
#: Counts of the works already stored, for a database that had no ``work_counts`` yet.
SEED = """
INSERT INTO work_counts (pipeline, status, n)
SELECT pipeline, status, count(*) FROM works GROUP BY pipeline, status
"""


async def upgrade(connection: AsyncConnection[Any]) -> None:
    cursor = await connection.execute("SELECT to_regclass('work_counts') IS NULL")
    row = await cursor.fetchone()
    new = bool(row and row[0])
    if new:
        await connection.execute(TABLE)
    await connection.execute(TRIGGERS)
    if new:
        await connection.execute(SEED)
