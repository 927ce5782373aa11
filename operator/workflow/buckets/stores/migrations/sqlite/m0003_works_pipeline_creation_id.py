"""Version 3: an index in view order per pipeline, as the PostgreSQL store has.

Views page through one pipeline in (creation, id) order (``delete_many``
and the transfer daemon do); without it SQLite walks ``works_creation_id``
and reads every row to test its pipeline.
"""

from __future__ import annotations

import sqlite3


def upgrade(connection: sqlite3.Connection) -> None:
    connection.execute(
        "CREATE INDEX IF NOT EXISTS works_pipeline_creation_id ON works (pipeline, creation, id)"
    )
