"""Where buckets keeps works: one interface (``Store``), an SQLite and a PostgreSQL store."""

from __future__ import annotations

import typing

from workflow.buckets.stores.base import COUNT_KEYS, StaleWorksError, Store, UnknownWorksError

if typing.TYPE_CHECKING:
    from workflow.buckets.settings import BucketsSettings


def make_store(settings: BucketsSettings) -> Store:
    """The store named by ``settings.database`` (not yet opened)."""
    if settings.store_kind == "sqlite":
        from workflow.buckets.stores.sqlite import SQLiteStore

        return SQLiteStore(settings.sqlite_path, readers=settings.sqlite_readers)
    from workflow.buckets.stores.postgres import PostgresStore

    return PostgresStore(settings.database, pool_size=settings.pool_size)


__all__ = ["COUNT_KEYS", "StaleWorksError", "Store", "UnknownWorksError", "make_store"]
