"""Guarded updates (``PUT /work?guard=attempt``): a late write never overtakes a newer record.

The runner records the start of an attempt and then its outcome; the
operator records how an attempt ended. Each of these writes is guarded, so
buckets refuses one that arrives after the record moved further along:
the start of attempt 1 after its outcome, anything of attempt 1 after
attempt 2 started. Both stores, over HTTP, against real servers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from buckets_works import deposit, stored, work

pytestmark = pytest.mark.integration


@pytest.fixture
def client(buckets) -> Iterator[httpx.Client]:
    with buckets.client() as client:
        yield client


def managed(client: httpx.Client) -> str:
    """A work deposited as the operator deposits: managed, attempt 0, queued."""
    reply = client.post(
        "/work",
        params={"return_ids": "True", "owner": "kubernetes-operator"},
        json=[work(status="queued")],
    )
    assert reply.status_code == 200, reply.text
    return reply.json()[0]


def put(client: httpx.Client, document: dict, guarded: bool = True) -> httpx.Response:
    return client.put("/work", params={"guard": "attempt"} if guarded else {}, json=[document])


def started(work_id: str, attempt: int) -> dict:
    return work(id=work_id, status="running", attempt=attempt, start=time.time(), stop=None)


def ended(work_id: str, attempt: int, status: str = "success") -> dict:
    now = time.time()
    return work(id=work_id, status=status, attempt=attempt, start=now - 1, stop=now)


def test_a_start_write_after_the_outcome_of_its_attempt_is_refused_and_changes_nothing(
    client: httpx.Client,
) -> None:
    work_id = managed(client)
    assert put(client, started(work_id, 1)).status_code == 200
    assert put(client, ended(work_id, 1)).status_code == 200
    late = put(client, started(work_id, 1))
    assert late.status_code == 409, late.text
    detail = late.json()["detail"]
    assert detail.startswith("attempt: ") and "attempt 1 ended" in detail, detail
    assert "nothing was updated" in detail
    record = stored(client, work_id)
    assert (record["status"], record["attempt"]) == ("success", 1)


def test_writes_of_an_older_attempt_are_refused_once_a_newer_one_started(
    client: httpx.Client,
) -> None:
    work_id = managed(client)
    put(client, started(work_id, 1))
    put(client, ended(work_id, 1, "failure") | {"status": "queued"})  # the operator: retry later
    assert put(client, started(work_id, 2)).status_code == 200
    for late in (started(work_id, 1), ended(work_id, 1, "failure")):
        reply = put(client, late)
        assert reply.status_code == 409, reply.text
        assert "holds attempt 2 running" in reply.json()["detail"]
    record = stored(client, work_id)
    assert (record["status"], record["attempt"], record["stop"]) == ("running", 2, None)


def test_writes_in_order_are_all_applied(client: httpx.Client) -> None:
    work_id = managed(client)
    for document in (
        started(work_id, 1),
        started(work_id, 1),  # a resent start of the same attempt is harmless
        ended(work_id, 1, "failure"),
        ended(work_id, 1, "failure") | {"results": {"why": "operator's record"}},
        started(work_id, 2),
        ended(work_id, 2),
    ):
        assert put(client, document).status_code == 200
    assert (stored(client, work_id)["status"], stored(client, work_id)["attempt"]) == ("success", 2)


def test_a_refused_batch_writes_none_of_its_works(client: httpx.Client) -> None:
    first, second = managed(client), managed(client)
    put(client, ended(first, 1))
    reply = client.put(
        "/work",
        params={"guard": "attempt"},
        json=[started(second, 1), started(first, 1)],
    )
    assert reply.status_code == 409
    assert stored(client, second)["status"] == "queued"


def test_an_unguarded_update_still_overwrites_as_the_public_contract_says(
    client: httpx.Client,
) -> None:
    [work_id] = deposit(client, work())
    put(client, ended(work_id, 1))
    assert put(client, started(work_id, 1), guarded=False).status_code == 200
    assert stored(client, work_id)["status"] == "running"


def test_an_unknown_guard_is_refused_naming_the_parameter(client: httpx.Client) -> None:
    work_id = managed(client)
    reply = client.put("/work", params={"guard": "time"}, json=[started(work_id, 1)])
    assert reply.status_code == 422
    assert reply.json()["detail"].startswith("query.guard")


def test_racing_start_and_outcome_writes_always_leave_the_outcome(buckets) -> None:
    """The start write races the outcome write (the start arriving late): the outcome stays."""

    async def race(work_id: str, http: httpx.AsyncClient) -> None:
        outcome, start = ended(work_id, 1), started(work_id, 1)
        # The start, sent several times (as a retrying client might), races the outcome.
        await asyncio.gather(
            *(http.put("/work", params={"guard": "attempt"}, json=[start]) for _ in range(3)),
            http.put("/work", params={"guard": "attempt"}, json=[outcome]),
            *(http.put("/work", params={"guard": "attempt"}, json=[start]) for _ in range(3)),
        )

    async def main() -> list[str]:
        async with httpx.AsyncClient(base_url=buckets.url, headers=buckets.headers()) as http:
            with buckets.client() as client:
                ids = [managed(client) for _ in range(20)]
            await asyncio.gather(*(race(work_id, http) for work_id in ids))
            return ids

    ids = asyncio.run(main())
    with buckets.client() as client:
        assert {stored(client, work_id)["status"] for work_id in ids} == {"success"}
