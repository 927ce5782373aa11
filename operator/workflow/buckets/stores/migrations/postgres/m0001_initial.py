"""Version 1: the first schema (works and the narrow claim queue), as first released."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

SCHEMA = """
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


async def upgrade(connection: AsyncConnection[Any]) -> None:
    await connection.execute(SCHEMA)
