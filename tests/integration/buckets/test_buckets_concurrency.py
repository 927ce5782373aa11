"""Concurrent withdrawers over HTTP: every work is handed out exactly once, none is lost.

16 threads, each with its own HTTP connections, withdraw from 2,000 works in
two pipelines until the queue answers null; on both stores. The measured rate
is printed (run with ``-s`` to see it).
"""

from __future__ import annotations

import threading
import time

import pytest
from buckets_works import work

pytestmark = pytest.mark.integration

WORKS = 2_000
WITHDRAWERS = 16
PIPELINES = ["concurrent-a", "concurrent-b"]


def test_sixteen_withdrawers_get_every_work_exactly_once(buckets) -> None:
    with buckets.client() as client:
        deposited: list[str] = []
        for start in range(0, WORKS, 500):
            batch = [
                work(pipeline=PIPELINES[n % 2], priority=1 + n % 5, parameters={"n": n})
                for n in range(start, start + 500)
            ]
            reply = client.post("/work", params={"return_ids": "True"}, json=batch)
            assert reply.status_code == 200, reply.text
            deposited += reply.json()

    claimed: list[list[dict]] = [[] for _ in range(WITHDRAWERS)]
    errors: list[BaseException] = []
    ready = threading.Barrier(WITHDRAWERS + 1)

    def withdrawer(number: int) -> None:
        try:
            with buckets.client() as own:
                ready.wait()
                while True:
                    reply = own.post("/work/withdraw", json={"pipeline": {"$in": PIPELINES}})
                    reply.raise_for_status()
                    document = reply.json()
                    if document is None:
                        return
                    claimed[number].append(document)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=withdrawer, args=(n,)) for n in range(WITHDRAWERS)]
    for thread in threads:
        thread.start()
    ready.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout=300)
    elapsed = time.perf_counter() - began

    assert not errors, errors
    handed = [document["id"] for documents in claimed for document in documents]
    assert len(handed) == WORKS, f"{WORKS - len(handed)} works were lost or repeated"
    assert sorted(handed) == sorted(deposited)
    assert all(
        document["status"] == "running" and document["attempt"] == 1
        for documents in claimed
        for document in documents
    )
    with buckets.client() as client:
        counts = client.get("/status").json()
    assert (counts["queued"], counts["running"]) == (0, WORKS)
    busy = sum(1 for documents in claimed if documents)
    print(
        f"\n[{buckets.store}] {WITHDRAWERS} withdrawers claimed {WORKS} works in "
        f"{elapsed:.2f} s: {WORKS / elapsed:.0f} works/s ({busy} withdrawers got work)"
    )
