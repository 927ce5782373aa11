"""32 concurrent withdrawers while the store restarts: no work handed out twice, none lost.

The works are counted before and after. SQLite: the buckets server itself
is stopped (SIGTERM, requests in flight finish) and started again on the
same file. PostgreSQL: the database is restarted under a running buckets
server (fast shutdown: every session is cut), which must reconnect. The
withdrawers behave like the public client's workers: one new connection per
request, and a failed request (refused, 5xx) is simply tried again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from fixtures.faults import (
    ServerProcess,
    create_database,
    restart_postgres,
    start_postgres,
    stop_postgres,
)
from fixtures.postgres import free_port

pytestmark = pytest.mark.integration

WORKS = 1200
WITHDRAWERS = 32
PIPELINE = "restarting"


def deposit(client: httpx.Client) -> list[str]:
    ids: list[str] = []
    for start in range(0, WORKS, 400):
        batch = [
            {"pipeline": PIPELINE, "site": "local", "user": "u", "command": ["true"],
             "priority": 1 + n % 5, "parameters": None, "tags": [f"n{n}"]}
            for n in range(start, start + 400)
        ]  # fmt: skip
        reply = client.post("/work", params={"return_ids": "True"}, json=batch)
        assert reply.status_code == 200, reply.text
        ids += reply.json()
    return ids


def ids_with_status(client: httpx.Client, status: str) -> list[str]:
    reply = client.post(
        "/view",
        json={"query": {"pipeline": PIPELINE, "status": status}, "projection": {"id": True},
              "limit": None},
    )  # fmt: skip
    reply.raise_for_status()
    return [item["id"] for item in reply.json()]


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_thirty_two_withdrawers_while_the_store_restarts_get_every_work_once(
    store, tmp_path, figures
):
    postgres = None
    if store == "sqlite":
        database = f"sqlite:///{tmp_path / 'queue.sqlite3'}"
    else:
        postgres = start_postgres()
        database = create_database(postgres, "queue")
    server = ServerProcess(database=database, log_path=tmp_path / "buckets.log", port=free_port())
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            deposited = deposit(client)
            before = client.get("/status").json()
        assert before["queued"] == WORKS

        claimed: list[list[str]] = [[] for _ in range(WITHDRAWERS)]
        failures: Counter[str] = Counter()
        problems: list[str] = []
        restarted = threading.Event()
        deadline = time.monotonic() + 240

        def withdrawer(number: int) -> None:
            limits = httpx.Limits(max_keepalive_connections=0)
            with httpx.Client(base_url=server.url, timeout=30, limits=limits) as own:
                while time.monotonic() < deadline:
                    try:
                        reply = own.post("/work/withdraw", json={"pipeline": {"$in": [PIPELINE]}})
                    except httpx.TransportError as error:
                        failures[type(error).__name__] += 1
                        time.sleep(0.1)
                        continue
                    if reply.status_code >= 500:
                        failures[f"HTTP {reply.status_code}"] += 1
                        time.sleep(0.1)
                        continue
                    if reply.status_code != 200:
                        problems.append(f"{reply.status_code}: {reply.text[:200]}")
                        return
                    document = reply.json()
                    if document is None:
                        if restarted.is_set():
                            return
                        time.sleep(0.1)
                        continue
                    claimed[number].append(document["id"])

        threads = [threading.Thread(target=withdrawer, args=(n,)) for n in range(WITHDRAWERS)]
        for thread in threads:
            thread.start()
        while sum(map(len, claimed)) < WORKS * 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        at_restart = sum(map(len, claimed))
        if postgres is not None:
            restart_postgres(postgres)
        else:
            server.stop()
            server.start()
        restarted.set()
        figures["faults injected"] += 1
        for thread in threads:
            thread.join(timeout=max(1.0, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in threads), "withdrawers hang"

        handed = [work_id for ids in claimed for work_id in ids]
        with httpx.Client(base_url=server.url, timeout=60) as client:
            after = client.get("/status").json()
            running = set(ids_with_status(client, "running"))
            queued = set(ids_with_status(client, "queued"))
        duplicated = len(handed) - len(set(handed))
        lost = set(deposited) - set(handed) - queued
        limbo = running - set(handed)
        figures["works checked"] += WORKS
        figures["works duplicated"] += duplicated
        figures["works lost"] += len(lost | limbo)
        print(
            f"\n[{store}] {WITHDRAWERS} withdrawers, restart after {at_restart} of {WORKS} "
            f"claims: handed out {len(handed)}, twice {duplicated}, left queued {len(queued)}, "
            f"claimed but never received {len(limbo)}; failed requests {dict(failures)}"
        )
        assert not problems, problems
        assert duplicated == 0, "a work was handed out twice"
        assert not lost and not limbo, (
            f"lost {sorted(lost)[:5]}, claimed unseen {sorted(limbo)[:5]}"
        )
        assert before["total"] == after["total"] == WORKS
        assert (after["queued"], after["running"]) == (0, WORKS)
        assert sorted(handed) == sorted(deposited)
    finally:
        server.stop()
        if postgres is not None:
            stop_postgres(postgres)
