"""Version 1: the first schema (works and the narrow claim queue), as first released."""

from __future__ import annotations

import sqlite3

from workflow.buckets.stores.migrations.sqlite import run

SCHEMA = """
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
CREATE INDEX IF NOT EXISTS queue_claim ON queue (pipeline, priority DESC, creation, id)
"""


def upgrade(connection: sqlite3.Connection) -> None:
    run(connection, SCHEMA)
