"""Benchmark 1: deposit over HTTP, batches of 1 and 100 works of ~1 KB, against the raw insert.

For each store the buckets server (one uvicorn process, as ``python -m
workflow.buckets`` runs it) takes ``POST /work?return_ids=True`` from
``CLIENTS`` kept-alive connections for a few seconds; the ceiling is the
same inserts done directly with the driver in the same run: the store's own
deposit statement (PostgreSQL: ``INSERT … SELECT FROM unnest(…)`` into
``works`` and ``queue``; SQLite: ``executemany`` plus the enqueue statement
in one ``BEGIN IMMEDIATE`` transaction) with rows prepared in advance, so the
ceiling pays nothing but the database and the driver. PostgreSQL's ceiling
uses ``CLIENTS`` connections; SQLite's uses one (it has one writer, and more
connections only wait for its lock). Each run empties the database, then alternates
short slices of HTTP and raw inserts (a shared machine's load comes in
bursts; alternating exposes both to the same bursts); the ratio is the
median of the runs' ratios.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any

from bench import load, services, workload
from bench.harness import Figure, Options, Report, median, percentile, phase, say

NAME = "buckets_deposit"
TITLE = "buckets deposit (works/s)"
CLIENTS = 4
BATCHES = (1, 100)
#: The issue's target: deposit batch-100 over HTTP ≥ 60% of the raw insert on PostgreSQL.
TARGET = 0.60


def run(options: Options) -> Report:
    report = Report(NAME, TITLE, options.command(NAME), options.quick)
    settings = {
        "seconds": options.pick(1.0, 0.25),
        "rounds": options.pick(4, 1),
        "trials": options.pick(3, 1),
    }
    report.details.update(settings, clients=CLIENTS)
    with services.postgres() as pg:
        for store in ("sqlite", "postgres"):
            if store == "sqlite":
                database = str(options.workdir / "deposit.sqlite3")
            else:
                database = pg.create_database("bench_deposit")
            with services.buckets(store, database, options.workdir) as server:
                for batch in BATCHES:
                    with phase(f"deposit {store} batch {batch}"):
                        _measure(report, server, store, database, batch, settings)
    return report


def _measure(
    report: Report,
    server: services.Buckets,
    store: str,
    database: str,
    batch: int,
    settings: dict[str, Any],
) -> None:
    http_rates, raw_rates, p99 = [], [], []
    bodies = [workload.body(workload.documents(batch)) for _ in range(4)]
    for _ in range(settings["trials"]):
        server.reset()
        totals = asyncio.run(_trial(server.url, store, database, bodies, batch, settings))
        http_rates.append(totals["http"].rate * batch)
        raw_rates.append(totals["raw"].rate * batch)
        p99.append(percentile(totals["http"].latencies, 0.99) * 1000)
        say(f"  {store} batch {batch}: http {http_rates[-1]:.0f}/s raw {raw_rates[-1]:.0f}/s")
    server.reset()
    pg100 = store == "postgres" and batch == 100
    figure = report.add(
        Figure(
            name=f"deposit {store} batch {batch}",
            value=median(http_rates),
            unit="works/s",
            ceiling=median(raw_rates),
            ceiling_name="raw driver insert",
            runs=http_rates,
            ratios=[h / r for h, r in zip(http_rates, raw_rates, strict=True) if r],
            target=f"≥ {TARGET:.0%} of raw" if pg100 else None,
            note=f"p99 {median(p99):.1f} ms per request; raw runs {[round(r) for r in raw_rates]}",
        )
    )
    if pg100 and figure.ratio is not None:
        figure.met = figure.ratio >= TARGET


async def _trial(
    url: str, store: str, database: str, bodies: list[bytes], batch: int, settings: dict[str, Any]
) -> dict[str, load.Totals]:
    """Alternating slices of HTTP deposits and raw inserts."""
    target = f"{url}/work?return_ids=True"
    turn = itertools.count()
    raw = await _raw_inserter(store, database, batch)
    try:
        async with load.session(CLIENTS) as http:

            async def call(client: int) -> Any:
                reply = await load.post(http, target, bodies[next(turn) % len(bodies)])
                if len(json.loads(reply)) != batch:
                    raise RuntimeError(f"deposit answered {reply[:200]!r}")

            async def deposit(seconds: float, left: int | None) -> load.Outcome:
                return await load.drive(CLIENTS, call, seconds=seconds)

            await load.drive(2, call, seconds=min(0.3, settings["seconds"]))  # warm up
            return await load.alternate(
                {"http": deposit, "raw": raw},
                rounds=settings["rounds"],
                seconds=settings["seconds"],
            )
    finally:
        await raw(0, None)


def _prepared_rows(batch: int) -> tuple[list[tuple[Any, ...]], itertools.count[int]]:
    from workflow.buckets.stores.base import row_of

    documents = workload.stored(workload.documents(batch))
    return [row_of(document) for document in documents], itertools.count()


async def _raw_inserter(store: str, database: str, batch: int) -> load.Slice:
    """A slice runner of raw inserts of ``batch`` rows; 0 seconds closes it."""
    rows, numbers = _prepared_rows(batch)

    def fresh() -> list[tuple[Any, ...]]:
        return [(f"raw{next(numbers):028d}", *row[1:]) for row in rows]

    if store == "sqlite":
        from workflow.buckets.stores.sqlite import ENQUEUE, INSERT_WORK, connect

        connection = connect(Path(database))

        async def insert_sqlite(seconds: float, left: int | None) -> load.Outcome:
            if not seconds:
                connection.close()
                return load.Outcome(0, 0.0)
            began, calls = time.perf_counter(), 0
            while time.perf_counter() - began < seconds:
                inserted = fresh()
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(INSERT_WORK, inserted)
                connection.execute(ENQUEUE, (json.dumps([row[0] for row in inserted]),))
                connection.execute("COMMIT")
                calls += 1
            return load.Outcome(calls, time.perf_counter() - began)

        return insert_sqlite

    from psycopg import AsyncConnection

    from workflow.buckets.stores.postgres import DEPOSIT

    connections = [await AsyncConnection.connect(database, autocommit=True) for _ in range(CLIENTS)]

    async def call(client: int) -> None:
        columns = [list(column) for column in zip(*fresh(), strict=True)]
        await connections[client].execute(DEPOSIT, columns)

    async def insert_postgres(seconds: float, left: int | None) -> load.Outcome:
        if not seconds:
            for connection in connections:
                await connection.close()
            return load.Outcome(0, 0.0)
        return await load.drive(CLIENTS, call, seconds=seconds)

    return insert_postgres
