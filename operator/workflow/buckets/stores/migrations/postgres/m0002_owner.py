"""Version 2: ``works.owner``, the manager of a managed work (NULL for ordinary works)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection


async def upgrade(connection: AsyncConnection[Any]) -> None:
    await connection.execute('ALTER TABLE works ADD COLUMN IF NOT EXISTS owner text COLLATE "C"')
