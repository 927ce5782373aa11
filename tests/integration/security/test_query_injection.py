"""SQL and query-operator injection through /view, /work/withdraw and the URLs: only the
documented operators are accepted, and hostile names and values are data, never SQL.

On both stores. Canary works are deposited first; after every attack they
must all still be there, unchanged and unclaimed, and the counts the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

pytestmark = pytest.mark.integration

SQL = [
    "x' OR '1'='1",
    'x" OR "1"="1',
    "'; DROP TABLE works; --",
    "1; DELETE FROM queue",
    "') OR 1=1 --",
    "$.** ? (@ != null)",
    '" || true || "',
    "%' OR pipeline LIKE '%",
    "x' UNION SELECT document FROM works --",
]
#: MongoDB operators this service does not implement; each must be refused naming it.
UNSUPPORTED = [
    "$where", "$regex", "$function", "$accumulator", "$jsonSchema", "$text", "$or", "$and",
    "$nor", "$not", "$elemMatch", "$all", "$size", "$type", "$mod", "$comment", "$geoWithin",
    "$lookup", "$set", "$inc", "$unset", "$options",
]  # fmt: skip
CANARIES = [
    {"pipeline": "canary", "site": "local", "user": "ada", "command": ["true"], "tags": ["a"]},
    {"pipeline": "canary", "site": "local", "user": "bob", "command": ["true"], "priority": 5},
]


@pytest.fixture
def client(buckets) -> Iterator[httpx.Client]:
    with buckets.client() as client:
        reply = client.post("/work", params={"return_ids": "True"}, json=CANARIES)
        assert reply.status_code == 200, reply.text
        yield client
        # Nothing was claimed, changed or dropped by any attack.
        stored = client.post("/view", json={"query": {"pipeline": "canary"}, "limit": None}).json()
        assert sorted(work["user"] for work in stored) == ["ada", "bob"]
        assert all(work["status"] == "queued" and work["attempt"] == 0 for work in stored)
        assert client.get("/status").json()["total"] == 2


def refused(reply: httpx.Response, *words: str) -> None:
    """A 400/422 whose detail holds one of ``words``."""
    assert reply.status_code in (400, 422), f"{reply.status_code}: {reply.text[:300]}"
    detail = reply.json()["detail"]
    assert any(word in detail for word in words), detail


def nothing(reply: httpx.Response, empty: Any) -> None:
    assert reply.status_code == 200, reply.text[:300]
    assert reply.json() == empty, reply.text[:300]


def test_hostile_values_are_compared_as_data(client, figures):
    for value in SQL:
        for query in (
            {"pipeline": value},
            {"pipeline": "canary", "user": value},
            {"pipeline": {"$in": [value, "nothing"]}},
            {"pipeline": "canary", "tags": {"$in": [value]}},
            {"config.parent": value},
            {"pipeline": "canary", "user": {"$gt": value, "$lt": value}},
        ):
            figures["bad inputs tried"] += 2
            nothing(client.post("/view", json={"query": query}), [])
            withdraw = {**query, "pipeline": query.get("pipeline", {"$in": ["canary"]})}
            nothing(client.post("/work/withdraw", json=withdraw), None)


def test_hostile_field_names_are_refused_naming_the_field(client, figures):
    for value in SQL:
        for name in (value, f"config.{value}", f"pipeline{value}", f"{value}.x"):
            figures["bad inputs tried"] += 3
            refused(
                client.post("/view", json={"query": {name: "canary"}}), "field name", "operator"
            )
            refused(
                client.post("/work/withdraw", json={"pipeline": {"$in": ["canary"]}, name: 1}),
                "field name",
                "operator",
            )
            reply = client.post("/view", json={"query": {}, "projection": {name: True}})
            assert reply.status_code in (400, 422), reply.text[:300]


def test_only_the_documented_operators_are_accepted(client, figures):
    for operator in UNSUPPORTED:
        figures["bad inputs tried"] += 3
        refused(client.post("/view", json={"query": {operator: "x"}}), operator)
        refused(client.post("/view", json={"query": {"user": {operator: "x"}}}), operator)
        refused(
            client.post(
                "/work/withdraw", json={"pipeline": {"$in": ["canary"]}, "user": {operator: 1}}
            ),
            operator,
        )
    for expression in (
        {"$function": {"body": "return true", "args": [], "lang": "js"}},
        {"$gte": ["$attempt", {"$function": "x"}]},
        {"$where": ["$attempt", "$retries"]},
        {"$gte": ["$attempt'; DROP TABLE works; --", "$retries"]},
    ):
        figures["bad inputs tried"] += 1
        reply = client.post("/view", json={"query": {"$expr": expression}})
        assert reply.status_code == 400, reply.text[:300]


def test_hostile_urls_find_nothing_and_delete_nothing(client, figures):
    for value in SQL:
        figures["bad inputs tried"] += 3
        assert client.get(f"/work/{quote(value, safe='')}").status_code in (404, 422)
        details = client.get(f"/status/details/{quote(value, safe='')}")
        assert details.status_code == 200 and details.json()["total"] == 0, details.text
        nothing(client.delete("/work", params={"ids": [value, "' OR 1=1 --"]}), True)
