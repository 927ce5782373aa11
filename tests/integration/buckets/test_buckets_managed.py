"""Managed works (``POST /work?owner=…``) over HTTP on both stores.

The Kubernetes operator records each Work it runs as a Job in buckets. Such a
record must never be claimed by a ``workflow run`` worker (it would run
twice) nor re-queued or expired by the audits (the operator runs retries and
timeouts itself). Besides the replies, these tests read the ``queue`` table
directly: the stores promise that a work has a queue row exactly when its
status is ``queued`` and it has no owner.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from buckets_works import deposit, stored, view, withdraw, work

pytestmark = pytest.mark.integration

OWNER = "kubernetes-operator"


@pytest.fixture
def client(buckets) -> Iterator[httpx.Client]:
    with buckets.client() as client:
        yield client


def deposit_managed(client: httpx.Client, *works: dict[str, Any], owner: str = OWNER) -> list[str]:
    """Deposit ``works`` managed by ``owner``, as the operator does; return their ids."""
    reply = client.post("/work", params={"return_ids": "True", "owner": owner}, json=list(works))
    assert reply.status_code == 200, reply.text
    return reply.json()


def queued_ids(buckets) -> set[str]:
    """The ids in the claim queue, read straight from the server's database."""
    if buckets.store == "sqlite":
        with contextlib.closing(sqlite3.connect(buckets.database, timeout=30)) as connection:
            return {row[0] for row in connection.execute("SELECT id FROM queue")}
    import psycopg

    with psycopg.connect(buckets.database, autocommit=True) as connection:
        return {row[0] for row in connection.execute("SELECT id FROM queue")}


# ----------------------------------------------------------------------------- deposit
def test_a_managed_work_keeps_the_status_it_is_sent_with(client: httpx.Client, buckets) -> None:
    ids = deposit_managed(
        client,
        work(id="w-created", status="created"),
        work(id="w-queued", status="queued"),
        work(id="w-running", status="running", start=time.time(), attempt=1),
    )
    assert ids == ["w-created", "w-queued", "w-running"]
    assert [stored(client, work_id)["status"] for work_id in ids] == [
        "created",
        "queued",
        "running",
    ]
    assert stored(client, "w-running")["attempt"] == 1
    assert queued_ids(buckets) == set()


def test_a_managed_queued_work_is_never_withdrawn(client: httpx.Client, buckets) -> None:
    [managed] = deposit_managed(client, work(id="managed", status="queued", priority=5))
    assert withdraw(client, pipeline="sample") is None
    [ordinary] = deposit(client, work(priority=1))
    claimed = withdraw(client, pipeline="sample")
    assert claimed is not None and claimed["id"] == ordinary
    assert withdraw(client, pipeline="sample") is None
    # The same across several pipelines (the store probes them one by one).
    assert withdraw(client, pipeline={"$in": ["sample", "other"]}) is None
    record = stored(client, managed)
    assert (record["status"], record["attempt"]) == ("queued", 0)
    assert queued_ids(buckets) == set()


def test_without_an_owner_a_deposit_still_queues(client: httpx.Client, buckets) -> None:
    [work_id] = deposit(client, work(status="running"))
    assert stored(client, work_id)["status"] == "queued"
    assert queued_ids(buckets) == {work_id}


def test_a_repeated_id_keeps_the_record_and_its_owner(client: httpx.Client, buckets) -> None:
    deposit_managed(client, work(id="managed", status="queued"))
    deposit(client, work(id="ordinary"))
    # Re-sent the other way round: neither record changes, nor does who manages it.
    assert deposit(client, work(id="managed")) == ["managed"]
    assert deposit_managed(client, work(id="ordinary", status="running")) == ["ordinary"]
    assert stored(client, "ordinary")["status"] == "queued"
    assert queued_ids(buckets) == {"ordinary"}
    assert withdraw(client, pipeline="sample")["id"] == "ordinary"
    assert withdraw(client, pipeline="sample") is None


# ----------------------------------------------------------------------------- update
def test_an_update_keeps_a_managed_work_out_of_the_queue(client: httpx.Client, buckets) -> None:
    [work_id] = deposit_managed(client, work(id="managed", status="created"))
    for status in ("queued", "running", "failure", "queued"):
        reply = client.put("/work", json=[stored(client, work_id) | {"status": status}])
        assert reply.status_code == 200 and reply.json() is True
        assert stored(client, work_id)["status"] == status
        assert withdraw(client, pipeline="sample") is None
        assert queued_ids(buckets) == set()


def test_an_update_in_a_batch_with_ordinary_works_requeues_only_those(
    client: httpx.Client, buckets
) -> None:
    [managed] = deposit_managed(client, work(id="managed", status="running"))
    [ordinary] = deposit(client, work())
    claimed = withdraw(client, pipeline="sample")
    assert claimed["id"] == ordinary
    both = [stored(client, managed) | {"status": "queued"}, claimed | {"status": "queued"}]
    assert client.put("/work", json=both).json() is True
    assert queued_ids(buckets) == {ordinary}
    assert withdraw(client, pipeline="sample")["id"] == ordinary
    assert withdraw(client, pipeline="sample") is None


# ----------------------------------------------------------------------------- audits
def test_the_failed_audit_leaves_managed_works_alone(client: httpx.Client, buckets) -> None:
    deposit_managed(client, work(id="managed", status="failure", attempt=1, retries=2))
    [ordinary] = deposit(client, work(retries=2))
    client.put("/work", json=[stored(client, ordinary) | {"status": "failure", "attempt": 1}])
    assert client.get("/audit/failed").json() == 1
    assert stored(client, ordinary)["status"] == "queued"
    assert stored(client, "managed")["status"] == "failure"
    assert queued_ids(buckets) == {ordinary}
    assert client.get("/audit/failed").json() == 0


def test_the_expired_audit_leaves_managed_works_alone(client: httpx.Client) -> None:
    long_ago = time.time() - 3600
    deposit_managed(client, work(id="managed", status="running", start=long_ago, timeout=60))
    [ordinary] = deposit(client, work(timeout=60))
    withdraw(client, pipeline="sample")
    client.put("/work", json=[stored(client, ordinary) | {"start": long_ago}])
    assert client.get("/audit/expired").json() == 1
    assert stored(client, ordinary)["status"] == "failure"
    assert stored(client, "managed")["status"] == "running"
    assert client.get("/audit/expired").json() == 0
    assert client.get("/audit/failed").json() == 1  # the ordinary work only
    assert stored(client, "managed")["status"] == "running"


# ----------------------------------------------------------------------------- reads, delete
def test_managed_works_are_counted_viewed_read_and_deleted(client: httpx.Client, buckets) -> None:
    deposit_managed(
        client,
        work(id="m-queued", pipeline="counted", status="queued"),
        work(id="m-running", pipeline="counted", status="running"),
        work(id="m-success", pipeline="counted", status="success"),
    )
    deposit(client, work(id="ordinary", pipeline="counted"))
    assert list(client.get("/status/details/counted").json().items()) == [
        ("total", 4),
        ("queued", 2),
        ("running", 1),
        ("success", 1),
        ("failure", 0),
    ]
    assert client.get("/status").json()["total"] == 4
    assert client.get("/status/pipelines").json() == ["counted"]
    queued = view(client, {"status": "queued"}, projection={"id": True})
    assert sorted(w["id"] for w in queued) == ["m-queued", "ordinary"]
    everything = view(client, {"pipeline": "counted"}, projection={"id": True, "status": True})
    assert {w["id"]: w["status"] for w in everything} == {
        "m-queued": "queued",
        "m-running": "running",
        "m-success": "success",
        "ordinary": "queued",
    }
    assert "owner" not in stored(client, "m-queued")  # the owner is not part of the document
    reply = client.delete("/work", params={"ids": ["m-queued", "m-running"]})
    assert reply.status_code == 200 and reply.json() is True
    assert client.get("/work/m-queued").status_code == 404
    assert client.get("/status/details/counted").json()["total"] == 2
    assert queued_ids(buckets) == {"ordinary"}


# ----------------------------------------------------------------------------- errors, docs
@pytest.mark.parametrize(
    ("owner", "rule"),
    [
        ("", "at least 1 character"),
        ("x" * 65, "at most 64 characters"),
        ("has space", "should match pattern"),
        ("op;drop", "should match pattern"),
        ("opérateur", "should match pattern"),
    ],
)
def test_a_bad_owner_is_422_naming_query_owner_and_stores_nothing(
    client: httpx.Client, owner: str, rule: str
) -> None:
    reply = client.post("/work", params={"return_ids": "True", "owner": owner}, json=[work()])
    assert reply.status_code == 422, reply.text
    detail = reply.json()["detail"]
    assert detail.startswith("query.owner: ") and rule in detail
    assert client.get("/status").json()["total"] == 0


@pytest.mark.parametrize("owner", ["a", "x" * 64, "kubernetes-operator", "team/ns:op_1.2"])
def test_owners_of_the_allowed_characters_are_accepted(client: httpx.Client, owner: str) -> None:
    assert deposit_managed(client, work(id="w", status="running"), owner=owner) == ["w"]
    assert withdraw(client, pipeline="sample") is None


def test_the_deposit_route_documents_managed_works(client: httpx.Client) -> None:
    route = client.get("/openapi.json").json()["paths"]["/work"]["post"]
    assert "managed" in route["description"] and "withdraw" in route["description"]
    [owner] = [p for p in route["parameters"] if p["name"] == "owner"]
    assert owner["in"] == "query" and not owner.get("required", False)
    schema = owner["schema"]["anyOf"][0]
    assert (schema["minLength"], schema["maxLength"]) == (1, 64)
    assert schema["pattern"] == "^[A-Za-z0-9._:/-]+$"
