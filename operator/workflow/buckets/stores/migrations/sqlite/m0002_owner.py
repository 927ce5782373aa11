"""Version 2: ``works.owner``, the manager of a managed work (NULL for ordinary works)."""

from __future__ import annotations

import sqlite3

from workflow.buckets.stores.migrations.sqlite import columns


def upgrade(connection: sqlite3.Connection) -> None:
    if "owner" not in columns(connection, "works"):
        connection.execute("ALTER TABLE works ADD COLUMN owner TEXT")
