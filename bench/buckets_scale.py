"""Benchmark 5b: buckets ``/status`` and ``/view`` latency with 1,000,000 stored works (PostgreSQL).

The works (the public client's full document, ~700 bytes of JSON each) are
bulk-loaded with ``COPY`` into the tables the server creates, with the
server's indexes dropped during the load and rebuilt after it (the server's
own schema statement re-creates them), then ``VACUUM ANALYZE``. They spread
over 10 pipelines, 50 users and the statuses 70% success, 10% failure,
10% running, 10% queued (with their ``queue`` rows).

One client then sends each request in turn (no concurrency: latency, not
throughput) and every request's time is kept; p50 and p99 per route. The
same-run floor is the echo route on the same server, the least any request
costs. The database (about 1 GB) lives in a temporary folder removed at the
end.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from bench import load, services, workload
from bench.harness import Figure, Options, Report, median, percentile, phase, say

NAME = "buckets_scale"
TITLE = "buckets at 1M works (PostgreSQL)"
TARGET_MS = 50.0
STATUSES = ["success"] * 7 + ["failure", "running", "queued"]
USERS = 50
COPY_ROWS = 100_000


def _requests(base: float, size: int, some_id: str) -> dict[str, tuple[str, str, Any]]:
    """Name → (method, path, body) of each measured request."""
    return {
        "GET /status": ("GET", "/status", None),
        "GET /status/details/bench-3": ("GET", "/status/details/bench-3", None),
        "GET /status/pipelines": ("GET", "/status/pipelines", None),
        "POST /view id": ("POST", "/view", {"query": {"id": some_id}}),
        "POST /view pipeline+status queued, 100": (
            "POST",
            "/view",
            {"query": {"pipeline": "bench-3", "status": "queued"}, "limit": 100},
        ),
        "POST /view pipeline, skip 5000, 100": (
            "POST",
            "/view",
            {"query": {"pipeline": "bench-3"}, "skip": 5000, "limit": 100},
        ),
        "POST /view status failure since t, 100": (
            "POST",
            "/view",
            {"query": {"status": "failure", "creation": {"$gt": base + size / 2}}, "limit": 100},
        ),
        "POST /view user, ids only": (
            "POST",
            "/view",
            {"query": {"user": "user-7"}, "projection": {"id": True}, "limit": 100},
        ),
    }


def run(options: Options) -> Report:
    report = Report(NAME, TITLE, options.command(NAME), options.quick)
    size = options.pick(1_000_000, 20_000)
    repeats = options.pick(200, 10)
    report.details.update(works=size, requests_per_route=repeats)
    with services.postgres() as pg:
        dsn = pg.create_database("bench_scale")
        with services.buckets("postgres", dsn, options.workdir) as server:
            with phase(f"loading {size} works"):
                base, some_id, seconds = asyncio.run(_load(dsn, size))
                report.details["load_seconds"] = round(seconds, 1)
                report.details["database_mb"] = _size_mb(dsn)
            say(f"  database: {report.details['database_mb']} MB")
            with phase("measuring latencies"):
                asyncio.run(_measure(report, server.url, _requests(base, size, some_id), repeats))
    return report


def _size_mb(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as connection:
        row = connection.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0] / 1024 / 1024) if row else 0


async def _load(dsn: str, size: int) -> tuple[float, str, float]:
    from psycopg import AsyncConnection

    from workflow.buckets.stores.base import dump
    from workflow.buckets.stores.migrations import migrations
    from workflow.buckets.stores.migrations.postgres import migrate

    began = time.monotonic()
    [template] = workload.documents(1, pipelines=1)
    template["parameters"] = {"number": 0}
    base = time.time() - size
    some_id = ""
    async with await AsyncConnection.connect(dsn, autocommit=True) as connection:
        await migrate(connection)
        indexes = await connection.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename IN ('works', 'queue') "
            "AND indexname NOT LIKE '%pkey'"
        )
        for (name,) in await indexes.fetchall():
            await connection.execute(f'DROP INDEX "{name}"')
        async with connection.cursor() as cursor:
            for begin in range(0, size, COPY_ROWS):  # statements of bounded size for the triggers
                async with cursor.copy(
                    'COPY works (id, pipeline, status, priority, creation, site, "user", doc) '
                    "FROM STDIN"
                ) as copy:
                    for number in range(begin, min(size, begin + COPY_ROWS)):
                        work_id = uuid.UUID(int=number + 1).hex
                        some_id = some_id or work_id
                        status = STATUSES[(number // 10) % len(STATUSES)]
                        document = {
                            **template,
                            "id": work_id,
                            "pipeline": f"bench-{number % 10}",
                            "user": f"user-{number % USERS}",
                            "status": status,
                            "priority": 1 + number % 5,
                            "creation": base + number,
                            "parameters": {"number": number},
                        }
                        await copy.write_row(
                            (
                                work_id,
                                document["pipeline"],
                                status,
                                document["priority"],
                                document["creation"],
                                "local",
                                document["user"],
                                dump(document),
                            )
                        )
        await connection.execute(
            'INSERT INTO queue (id, pipeline, priority, creation, site, "user") '
            'SELECT id, pipeline, priority, creation, site, "user" FROM works '
            "WHERE status = 'queued'"
        )
        for step in migrations("postgres"):  # each is a no-op but for the dropped indexes
            await step.upgrade(connection)
        await connection.execute("VACUUM ANALYZE works")
        await connection.execute("VACUUM ANALYZE queue")
    return base, some_id, time.monotonic() - began


async def _measure(
    report: Report, url: str, requests: dict[str, tuple[str, str, Any]], repeats: int
) -> None:
    async with load.session(1) as http:
        echo: list[float] = []
        for _ in range(repeats):
            sent = time.perf_counter()
            await load.post(http, f"{url}/bench/echo", b"{}")
            echo.append(time.perf_counter() - sent)
        floor = percentile(echo, 0.99) * 1000
        for name, (method, path, body) in requests.items():
            times = []
            for _ in range(repeats):
                sent = time.perf_counter()
                if method == "GET":
                    reply = await load.get(http, url + path)
                else:
                    reply = await load.post(http, url + path, json.dumps(body).encode())
                times.append(time.perf_counter() - sent)
            answer = json.loads(reply)
            p99 = percentile(times, 0.99) * 1000
            figure = report.add(
                Figure(
                    name=f"{name} p99",
                    value=p99,
                    unit="ms",
                    ceiling=floor,
                    ceiling_name="echo p99",
                    target=f"< {TARGET_MS:.0f} ms",
                    met=p99 < TARGET_MS,
                    note=f"p50 {median(times) * 1000:.1f} ms; answer "
                    + (
                        f"{len(answer)} works"
                        if isinstance(answer, list)
                        else json.dumps(answer)[:80]
                    ),
                )
            )
            say(f"  {figure.name}: {p99:.1f} ms ({figure.note})")
