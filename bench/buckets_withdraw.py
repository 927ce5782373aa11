"""Benchmark 2: withdraw over HTTP at 1, 8 and 32 clients, against two same-run ceilings.

Each run starts from 20,000 queued works of ~1 KB spread over 10 pipelines
and 5 priorities (filled through the store's own deposit code). Every client
sends what a worker serving all ten pipelines sends, ``POST /work/withdraw``
with ``{"pipeline": {"$in": [ten names]}}``, on a kept-alive connection.
Every claimed id is kept: duplicates must be 0.

Ceilings, measured in the same run, at the same concurrency, on the same
filled queue: each run alternates short slices (1 s, or an equal share of
75% of the queue) of HTTP withdraw, raw dequeue, in-process store and echo,
four rounds in rotating order, so that the bursts of a shared machine hit
all of them alike; the ratio is the median of the runs' ratios.

* **raw dequeue** - the store's own claim statement (built by the same
  query translation, one work per statement) run directly with the driver:
  PostgreSQL with one connection per client; SQLite with one connection,
  because SQLite has one writer and extra connections only queue for its
  lock (its busy handler sleeps, which would understate the ceiling);
* **HTTP echo** - ``POST /bench/echo`` on the same server process (see
  ``bench.server``): the same request and a reply of the same size, with no
  parsing and no database.

Also measured: the store object called in-process (no HTTP), which splits
the gap between raw and HTTP into store and HTTP shares; the CPU each
process spent per claimed work (server, clients, PostgreSQL), which does not
depend on how busy the machine is; and, on PostgreSQL, a sustained run of
60 s at 8 clients over a queue large enough not to empty (see
``_sustained``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from bench import load, services, workload
from bench.harness import Figure, Options, Report, median, percentile, phase, say, tree_cpu, usage

NAME = "buckets_withdraw"
TITLE = "buckets withdraw (works/s)"
CONCURRENCY = (1, 8, 32)
QUEUED = 20_000
PG_TARGET = 0.60  # of the raw dequeue at 8 clients, sustained 60 s
SQLITE_TARGET = 0.40  # of the HTTP echo ceiling
DRIFT_LIMIT = 0.15  # last 10 s within 15% of the first 10 s
BLOCK = 5.0  # seconds of withdrawing between two probes of the ceilings
QUERY = {"pipeline": {"$in": workload.pipeline_names()}}


def run(options: Options) -> Report:
    report = Report(NAME, TITLE, options.command(NAME), options.quick)
    settings = {
        "seconds": options.pick(1.0, 0.25),
        "rounds": options.pick(4, 1),
        "trials": options.pick(3, 1),
        "raw_probe": options.pick(1.0, 0.25),
        "queued": options.pick(QUEUED, 2_000),
        "concurrency": options.pick(CONCURRENCY, (1, 8)),
        "sustained": options.pick(60.0, 3.0),
    }
    report.details.update(settings, query=QUERY)
    queue = workload.stored(workload.documents(settings["queued"]))
    with services.postgres() as pg:
        for store in ("sqlite", "postgres"):
            if store == "sqlite":
                database = str(options.workdir / "withdraw.sqlite3")
            else:
                database = pg.create_database("bench_withdraw")
                settings["postgres_pid"] = pg.server.pid
            with services.buckets(store, database, options.workdir) as server:
                raw_at_8 = None
                for clients in settings["concurrency"]:
                    with phase(f"withdraw {store} at {clients} clients"):
                        raw = _measure(report, server, store, database, clients, queue, settings)
                    raw_at_8 = raw if clients == 8 else raw_at_8
                if store == "postgres":
                    with phase("withdraw postgres sustained"):
                        _sustained(report, server, database, raw_at_8, settings)
    return report


def _refill(
    server: services.Buckets, store: str, database: str, queue: list[dict[str, Any]]
) -> None:
    server.reset()
    services.fill(store, database, queue)


def _measure(
    report: Report,
    server: services.Buckets,
    store: str,
    database: str,
    clients: int,
    queue: list[dict[str, Any]],
    settings: dict[str, Any],
) -> float:
    trials: list[dict[str, load.Totals]] = []
    cpu: dict[str, list[float]] = {}
    for _ in range(settings["trials"]):
        _refill(server, store, database, queue)
        totals = asyncio.run(
            _trial(
                server.url,
                store,
                database,
                clients,
                settings,
                len(queue) * 3 // 4,
                server.pid,
                settings.get("postgres_pid") if store == "postgres" else None,
                cpu,
            )
        )
        trials.append(totals)
        say(
            f"  {store} x{clients}: "
            + ", ".join(f"{name} {t.rate:.0f}/s" for name, t in totals.items())
            + f"; p99 {percentile(totals['http'].latencies, 0.99) * 1000:.1f} ms"
        )
    server.reset()
    rates = {name: [t[name].rate for t in trials] for name in trials[0]}
    p50 = [percentile(t["http"].latencies, 0.50) * 1000 for t in trials]
    p99 = [percentile(t["http"].latencies, 0.99) * 1000 for t in trials]
    claimed = sum(len(t["http"].values) for t in trials)
    duplicates = sum(len(t["http"].values) - len(set(t["http"].values)) for t in trials)
    rate = median(rates["http"])
    per_work = {
        name: {
            part: round(spent[index] / spent[3] * 1000, 3) if spent[3] else None
            for index, part in enumerate(("server", "clients", "postgres"))
        }
        for name, spent in cpu.items()
    }
    totals_ms = {name: sum(v or 0 for v in parts.values()) for name, parts in per_work.items()}
    note = (
        f"p50 {median(p50):.1f} ms, p99 {median(p99):.1f} ms; {claimed} works claimed over HTTP, "
        f"duplicates {duplicates}; store in-process {median(rates['store']):.0f}/s; "
        f"CPU ms per work (server+clients+db): HTTP {totals_ms.get('http', 0):.2f}, "
        f"raw {totals_ms.get('raw', 0):.2f}"
    )
    raw_figure = Figure(
        name=f"withdraw {store} x{clients} vs raw dequeue",
        value=rate,
        unit="works/s",
        ceiling=median(rates["raw"]),
        ceiling_name="raw dequeue",
        runs=rates["http"],
        note=note,
        ratios=[h / r for h, r in zip(rates["http"], rates["raw"], strict=True) if r],
    )
    echo_figure = Figure(
        name=f"withdraw {store} x{clients} vs HTTP echo",
        value=rate,
        unit="works/s",
        ceiling=median(rates["echo"]),
        ceiling_name="HTTP echo",
        runs=rates["http"],
        ratios=[h / e for h, e in zip(rates["http"], rates["echo"], strict=True) if e],
    )
    if store == "sqlite":
        echo_figure.target = f"≥ {SQLITE_TARGET:.0%} of echo"
        echo_figure.met = (echo_figure.ratio or 0) >= SQLITE_TARGET
    report.add(raw_figure)
    report.add(echo_figure)
    report.add(
        Figure(
            name=f"withdraw {store} x{clients} duplicates",
            value=duplicates,
            unit="works",
            target="0",
            met=duplicates == 0,
        )
    )
    report.details.setdefault("runs", {})[f"{store} x{clients}"] = {
        "rates": rates,
        "p50_ms": p50,
        "p99_ms": p99,
        "cpu_ms_per_call": per_work,
    }
    return median(rates["raw"])


def _cpu(server_pid: int, postgres_pid: int | None) -> tuple[float, float, float]:
    """CPU seconds so far of the buckets server, this process (the clients), PostgreSQL."""
    return (
        usage(server_pid).cpu,
        usage(os.getpid()).cpu,
        tree_cpu(postgres_pid) if postgres_pid else 0.0,
    )


async def _trial(
    url: str,
    store: str,
    database: str,
    clients: int,
    settings: dict[str, Any],
    budget: int,
    server_pid: int,
    postgres_pid: int | None,
    cpu: dict[str, list[float]],
) -> dict[str, load.Totals]:
    """Alternating slices of HTTP, raw, in-process store and echo, on one filled queue.

    ``cpu`` collects, per kind, the CPU seconds of the server, the clients
    and PostgreSQL during its slices, and the calls they made.
    """
    body = json.dumps(QUERY).encode()
    target = services.open_store(store, database)  # configured as the server's (defaults)
    await target.open()
    raw = await _raw_claimer(store, database, clients)
    try:
        async with load.session(clients) as http:

            async def withdraw(client: int) -> Any:
                document = json.loads(await load.post(http, f"{url}/work/withdraw", body))
                return load.DONE if not document else document["id"]

            async def echo(client: int) -> Any:
                json.loads(await load.post(http, f"{url}/bench/echo", body))

            async def direct(client: int) -> Any:
                return load.DONE if await target.withdraw(QUERY) is None else None

            def kind(call: Any, keep: bool = False) -> load.Slice:
                async def run(seconds: float, left: int | None) -> load.Outcome:
                    return await load.drive(
                        clients, call, seconds=seconds, max_calls=left, keep_values=keep
                    )

                return run

            def metered(name: str, slice_: load.Slice) -> load.Slice:
                async def run(seconds: float, left: int | None) -> load.Outcome:
                    before = _cpu(server_pid, postgres_pid)
                    outcome = await slice_(seconds, left)
                    after = _cpu(server_pid, postgres_pid)
                    spent = cpu.setdefault(name, [0.0, 0.0, 0.0, 0])
                    for index in range(3):
                        spent[index] += after[index] - before[index]
                    spent[3] += outcome.calls
                    return outcome

                return run

            await load.drive(clients, echo, seconds=min(0.5, settings["seconds"]))  # warm up
            kinds = {
                "http": kind(withdraw, keep=True),
                "raw": raw,
                "store": kind(direct),
                "echo": kind(echo),
            }
            return await load.alternate(
                {name: metered(name, slice_) for name, slice_ in kinds.items()},
                rounds=settings["rounds"],
                seconds=settings["seconds"],
                budget=budget,
                consuming=("http", "raw", "store"),
            )
    finally:
        await raw(0, None)  # closes its connections
        await target.close()


async def _http(url: str, clients: int, seconds: float, limit: int) -> load.Outcome:
    """Kept-alive clients withdrawing for ``seconds`` (at most ``limit`` works); ids kept."""
    body = json.dumps(QUERY).encode()
    target = f"{url}/work/withdraw"
    async with load.session(clients) as http:

        async def call(client: int) -> Any:
            document = json.loads(await load.post(http, target, body))
            return load.DONE if not document else document["id"]

        return await load.drive(clients, call, seconds=seconds, max_calls=limit, keep_values=True)


# -- raw driver -------------------------------------------------------------------------


def postgres_claim() -> tuple[str, list[Any]]:
    """The PostgreSQL store's claim statement for ``QUERY`` (one work) and its parameters."""
    from workflow.buckets.queries import PostgresDialect, Target, translate
    from workflow.buckets.stores.base import QUEUE_COLUMNS, split_pipelines
    from workflow.buckets.stores.postgres import CLAIM, CLAIM_ACROSS

    split = split_pipelines(QUERY)
    clause = translate(
        split[1] if split else QUERY, PostgresDialect(), Target(QUEUE_COLUMNS, "w.doc")
    )
    join = " JOIN works AS w ON w.id = q.id" if clause.uses_document else ""
    if split:
        return CLAIM_ACROSS.format(join=join, where=clause.sql), [split[0], *clause.params, 1, 1]
    return CLAIM.format(join=join, where=clause.sql), [*clause.params, 1]


def sqlite_claim() -> tuple[str, list[Any]]:
    """The SQLite store's candidate query for ``QUERY`` (one work) and its parameters."""
    from workflow.buckets.queries import SQLiteDialect, Target, translate
    from workflow.buckets.stores.base import QUEUE_COLUMNS, split_pipelines
    from workflow.buckets.stores.sqlite import CLAIM_ACROSS, CLAIM_PROBE, CLAIM_SELECT

    split = split_pipelines(QUERY)
    clause = translate(
        split[1] if split else QUERY, SQLiteDialect(), Target(QUEUE_COLUMNS, "w.doc")
    )
    join = " JOIN works AS w ON w.id = q.id" if clause.uses_document else ""
    if split:
        probe = CLAIM_PROBE.format(join=join, where=clause.sql)
        sql = CLAIM_ACROSS.format(probes=" UNION ALL ".join([probe] * len(split[0])))
        params = [value for name in split[0] for value in (name, *clause.params, 1)]
        return sql, [*params, 1]
    return CLAIM_SELECT.format(join=join, where=clause.sql), [*clause.params, 1]


async def _raw_claimer(store: str, database: str, clients: int) -> load.Slice:
    """A slice runner of the raw dequeue; calling it with 0 seconds closes it."""
    if store == "sqlite":
        return _raw_sqlite(Path(database))
    from psycopg import AsyncConnection

    sql, params = postgres_claim()
    connections = [await AsyncConnection.connect(database, autocommit=True) for _ in range(clients)]

    async def claim(client: int) -> Any:
        cursor = await connections[client].execute(sql, [*params, time.time()])
        rows = await cursor.fetchall()
        return load.DONE if not rows else rows[0][3]

    async def run(seconds: float, left: int | None) -> load.Outcome:
        if not seconds:
            for connection in connections:
                await connection.close()
            return load.Outcome(0, 0.0)
        return await load.drive(clients, claim, seconds=seconds, max_calls=left)

    return run


def _raw_sqlite(path: Path) -> load.Slice:
    """The SQLite claim on one connection (its single writer), as a slice runner."""
    from workflow.buckets.stores.sqlite import MARK_RUNNING, connect

    select, params = sqlite_claim()
    connection = connect(path)

    async def run(seconds: float, left: int | None) -> load.Outcome:
        if not seconds:
            connection.close()
            return load.Outcome(0, 0.0)
        claimed = 0
        began = time.perf_counter()
        while (left is None or claimed < left) and time.perf_counter() - began < seconds:
            connection.execute("BEGIN IMMEDIATE")
            ids = [row[0] for row in connection.execute(select, params)]
            if not ids:
                connection.execute("ROLLBACK")
                break
            listed = json.dumps(ids)
            connection.execute(
                "DELETE FROM queue WHERE id IN (SELECT value FROM json_each(?))", (listed,)
            )
            connection.execute(MARK_RUNNING, (time.time(), listed)).fetchall()
            connection.execute("COMMIT")
            claimed += 1
        return load.Outcome(claimed, time.perf_counter() - began)

    return run


# -- sustained --------------------------------------------------------------------------


def _sustained(
    report: Report,
    server: services.Buckets,
    database: str,
    raw_at_8: float | None,
    settings: dict[str, Any],
) -> None:
    """60 s of withdraws at 8 clients, in blocks, with same-time raw and echo probes between.

    The withdraw runs in blocks of ``BLOCK`` seconds (60 s of withdrawing in
    all); between blocks a short raw-dequeue slice and a short echo slice
    measure the two ceilings at that moment. The drift target compares the
    last 10 s of withdrawing with the first 10 s, as a rate and, since the
    machine's own load moves the rate, as the share of the echo ceiling
    measured beside each block (echo does not touch the database, so a decay
    of the queue shows in that share while the machine's load cancels out).
    """
    seconds = settings["sustained"]
    block = min(BLOCK, seconds)
    expected = max(raw_at_8 or 0, 1000.0) * 1.2
    size = int(min(max(expected * seconds * 1.5, QUEUED), 400_000))
    with phase(f"  filling {size} works"):
        server.reset()
        template = workload.stored(workload.documents(min(size, 20_000)))
        batch = []
        for index in range(size):
            document = template[index % len(template)]
            batch.append(
                {**document, "id": f"s{index:09d}", "creation": document["creation"] + index}
            )
        services.fill("postgres", database, batch, batch=2000)
        del batch
    blocks = asyncio.run(_blocks(server.url, database, 8, seconds, block, settings["raw_probe"]))
    server.reset()
    report.details["sustained_blocks"] = blocks
    http = sum(b["http_calls"] for b in blocks) / sum(b["http_seconds"] for b in blocks)
    raw = median([b["raw"] for b in blocks])
    per_block = [b["http_calls"] / b["http_seconds"] for b in blocks]
    shares = [rate / b["echo"] for rate, b in zip(per_block, blocks, strict=True) if b["echo"]]
    window = max(1, round(min(10.0, seconds / 3) / block))
    first, last = median(per_block[:window]), median(per_block[-window:])
    first_share, last_share = median(shares[:window]), median(shares[-window:])
    drift = abs(last_share - first_share) / first_share if first_share else float("nan")
    figure = report.add(
        Figure(
            name=f"withdraw postgres x8 sustained {seconds:.0f} s vs raw dequeue",
            value=http,
            unit="works/s",
            ceiling=raw,
            ceiling_name="raw dequeue x8 between blocks",
            runs=per_block,
            ratios=[rate / b["raw"] for rate, b in zip(per_block, blocks, strict=True) if b["raw"]],
            target=f"≥ {PG_TARGET:.0%} of raw",
            note=f"queue of {size} works; {len(blocks)} blocks of {block:.0f} s",
        )
    )
    figure.met = (figure.ratio or 0) >= PG_TARGET
    seconds_window = window * block
    span = f"{seconds_window:.0f} s"
    report.add(
        Figure(
            name=f"withdraw postgres x8 last {span} vs first {span}",
            value=last,
            unit="works/s",
            ceiling=first,
            ceiling_name=f"first {seconds_window:.0f} s",
            ratios=[last_share / first_share] if first_share else [],
            target=f"within {DRIFT_LIMIT:.0%}",
            met=drift <= DRIFT_LIMIT,
            note=f"ratio of the shares of the echo ceiling measured beside each block "
            f"({first_share:.0%} first, {last_share:.0%} last); plain rates "
            f"{first:.0f}/s first, {last:.0f}/s last; raw dequeue "
            f"{blocks[0]['raw']:.0f}/s after the first block, "
            f"{blocks[-1]['raw']:.0f}/s after the last",
        )
    )


async def _blocks(
    url: str, database: str, clients: int, seconds: float, block: float, probe: float
) -> list[dict[str, float]]:
    body = json.dumps(QUERY).encode()
    raw = await _raw_claimer("postgres", database, clients)
    blocks = []
    try:
        async with load.session(clients) as http:

            async def withdraw(client: int) -> Any:
                document = json.loads(await load.post(http, f"{url}/work/withdraw", body))
                return load.DONE if not document else None

            async def echo(client: int) -> Any:
                json.loads(await load.post(http, f"{url}/bench/echo", body))

            done = 0.0
            while done < seconds - 1e-6:
                outcome = await load.drive(clients, withdraw, seconds=min(block, seconds - done))
                if outcome.exhausted:
                    raise RuntimeError(
                        "the sustained run emptied its queue; it must stay non-empty"
                    )
                done += outcome.seconds
                raw_rate = (await raw(probe, None)).rate
                echo_rate = (await load.drive(clients, echo, seconds=probe)).rate
                blocks.append(
                    {
                        "http_calls": outcome.calls,
                        "http_seconds": outcome.seconds,
                        "raw": raw_rate,
                        "echo": echo_rate,
                    }
                )
    finally:
        await raw(0, None)
    return blocks
