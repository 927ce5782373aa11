"""Versioned schema migrations of the stores, applied in order when a store opens.

Each dialect has a package of numbered modules (``sqlite/m0002_owner.py``):
the number is the schema version the module brings the database to, and its
``upgrade(connection)`` makes the changes. ``schema_migrations`` records
every version applied, so each runs once per database; all that are
missing run in one transaction, under a lock (SQLite's write lock,
PostgreSQL's advisory lock), so servers starting together apply them once
and no server ever sees half a schema.

A database made before versions were recorded has no ``schema_migrations``
and a schema from any earlier release. Every migration is therefore written
to be a no-op where its change is already there (``IF NOT EXISTS``, a look
at the columns first), and all of them run on such a database.

A new migration is a new module with the next number; a module already
released is never edited.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("workflow.buckets")

#: The table that records applied versions (same layout in both dialects).
VERSIONS_TABLE = "schema_migrations"
_NAME = re.compile(r"^m(\d{4})_(\w+)$")


@dataclass(frozen=True)
class Migration:
    """One numbered step of a dialect's schema."""

    version: int
    name: str
    upgrade: Callable[..., Any]


def migrations(dialect: str) -> list[Migration]:
    """The migrations of ``dialect`` ("sqlite" or "postgres"), in version order."""
    package = importlib.import_module(f"{__name__}.{dialect}")
    found = []
    for module in pkgutil.iter_modules(package.__path__):
        match = _NAME.match(module.name)
        if match is None:
            continue
        loaded = importlib.import_module(f"{package.__name__}.{module.name}")
        found.append(Migration(int(match.group(1)), match.group(2), loaded.upgrade))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"the {dialect} migrations are not numbered 1, 2, 3, …: {versions}")
    return found


def pending(known: list[Migration], applied: set[int], dialect: str) -> list[Migration]:
    """The migrations still to apply; a database newer than this server is only logged."""
    newer = sorted(version for version in applied if version > len(known))
    if newer:
        log.warning(
            "the %s database has schema versions %s, newer than this server knows (up to %d); "
            "it runs on the schema it knows",
            dialect, newer, len(known),
        )  # fmt: skip
    return [migration for migration in known if migration.version not in applied]
