"""Bad requests get a 4xx whose message names the field and the rule; none gets a 500.

Runs on both stores, over HTTP, against real server processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from buckets_works import deposit, work

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
LIMIT = 16 * MIB  # the server's default max_body_bytes


@pytest.fixture
def client(buckets) -> Iterator[httpx.Client]:
    with buckets.client() as client:
        yield client


def test_a_body_over_the_limit_is_refused_413_from_its_content_length(client: httpx.Client) -> None:
    reply = client.post(
        "/work",
        content=b"[" + b" " * (LIMIT + 10) + b"]",
        headers={"content-type": "application/json"},
    )
    assert reply.status_code == 413
    assert reply.json()["detail"] == f"body: is larger than the {LIMIT} byte limit of this server"
    assert client.get("/status").json()["total"] == 0


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(client: httpx.Client) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b"["
        for _ in range(40):  # 40 MiB, if the server kept reading
            sent += MIB
            yield b" " * MIB
        yield b"]"

    try:
        reply = client.post("/view", content=chunks(), headers={"content-type": "application/json"})
    except httpx.HTTPError:
        pytest.fail("the server should answer 413, not drop the connection")
    assert reply.request.headers.get("transfer-encoding") == "chunked"
    assert reply.status_code == 413
    assert "byte limit" in reply.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/view", {"query": {"$where": "this.priority > 1"}}),
        ("/work/withdraw", {"pipeline": {"$in": ["p"]}, "$where": "1"}),
    ],
)
def test_where_is_refused_400_naming_the_operator(
    client: httpx.Client, path: str, body: Any
) -> None:
    reply = client.post(path, json=body)
    assert reply.status_code == 400
    assert reply.json()["detail"].startswith("unsupported query operator '$where'")


def test_regex_is_refused_400_naming_operator_and_field(client: httpx.Client) -> None:
    reply = client.post("/view", json={"query": {"status": {"$regex": "q"}}})
    assert reply.status_code == 400
    assert "'$regex' at 'status'" in reply.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("POST", "/work", {"pipeline": "p"}, 422, "body: must be an array of works, not an object"),
        ("POST", "/work", [[]], 422, "works[0]: must be an object, not an array"),
        ("POST", "/work", [{"site": "s", "user": "u"}], 422, "works[0].pipeline: Field required"),
        (
            "POST",
            "/work",
            [work(timeout="soon")],
            422,
            "works[0].timeout: Input should be a valid integer",
        ),
        ("POST", "/work", [work(status="done")], 422, "works[0].status: Input should be 'created'"),
        ("PUT", "/work", [work()], 422, "works[0].id: is required to update a work"),
        (
            "POST",
            "/view",
            [],
            422,
            "body: must be an object with query, projection, skip and limit",
        ),
        (
            "POST",
            "/view",
            {"query": {}, "limit": -1},
            422,
            "body.limit: Input should be greater than or equal to 0",
        ),
        (
            "POST",
            "/view",
            {"query": {}, "skip": "3"},
            422,
            "body.skip: Input should be a valid integer",
        ),
        (
            "POST",
            "/view",
            {"query": {}, "sort": {"id": 1}},
            422,
            "body.sort: Extra inputs are not permitted",
        ),
        (
            "POST",
            "/view",
            {"query": {}, "projection": {"id": 1, "tags": 0}},
            400,
            "projection: cannot mix",
        ),
        ("POST", "/work/withdraw", ["p"], 422, "body: must be an object (a filter), not an array"),
        ("POST", "/work/withdraw", {"a b": 1}, 400, "field name 'a b' is not allowed"),
        (
            "GET",
            "/audit/stale/-1",
            None,
            422,
            "path.days: Input should be greater than or equal to 0",
        ),
        ("GET", "/audit/stale/inf", None, 422, "path.days"),
    ],
)
def test_malformed_requests_get_a_4xx_naming_field_and_rule(
    client: httpx.Client, method: str, path: str, body: Any, status: int, detail: str
) -> None:
    reply = (
        client.request(method, path, json=body)
        if body is not None
        else client.request(method, path)
    )
    assert reply.status_code == status, reply.text
    assert detail in reply.json()["detail"]


def test_return_ids_must_be_a_boolean(client: httpx.Client) -> None:
    reply = client.post("/work", params={"return_ids": "maybe"}, json=[work()])
    assert reply.status_code == 422
    assert reply.json()["detail"] == "query.return_ids: 'maybe' is not a boolean (True or False)"


HOSTILE: list[tuple[str, str, bytes]] = [
    (method, path, raw)
    for method, path in [
        ("POST", "/work"),
        ("PUT", "/work"),
        ("POST", "/work/withdraw"),
        ("POST", "/view"),
    ]
    for raw in [
        b"",
        b"nul",
        b"{",
        b"[1,",
        b"null",
        b"true",
        b"123",
        b'"text"',
        b"{}",
        b"[]",
        b"[null]",
        b"[1, 2]",
        b"[{}]",
        b'[{"pipeline": 5}]',
        b'[{"pipeline": "p", "site": "s", "user": "u", "priority": 99999999999999999999999999}]',
        b'[{"pipeline": "p", "site": "s", "user": "u", "attempt": 99999999999999999999999999}]',
        b'[{"pipeline": "p", "site": "s", "user": "u", "creation": 1e308}]',
        b'[{"pipeline": "p", "site": "s", "user": "u", "creation": 1' + b"0" * 400 + b"}]",
        b'[{"pipeline": "p", "site": "s", "user": "u", "id": 7}]',
        b'[{"pipeline": "p", "site": "s", "user": "u", "parameters": {"x": "\\u0000"}}]',
        b'{"query": {"priority": 1' + b"0" * 40 + b"}}",
        b'{"query": {"event": {"$in": [1' + b"0" * 40 + b"]}}}",
        b'{"query": {"pipeline": "\\ud800"}}',
        b'{"query": {"creation": {"$gt": [1, {"a": 2}]}}}',
        b'{"query": [], "limit": 1e400}',
        b'{"query": {}, "skip": 99999999999999999999999999}',
        b'{"query": {"config": {"parent": {"$in": [{"$in": 1}]}}}}',
        b'{"pipeline": {"$in": [1, null, [2], {"a": 1}]}}',
        b'{"pipeline": {"$in": ["a", "b"]}, "tags": {"$in": [null]}, "event": 3}',
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b"\xff\xfe\x00\x00",
        b'[{"pipeline": "p", "site": "s", "user": "u", "notify": {"slack": {"x": 1}}}]',
    ]
]


@pytest.mark.parametrize(("method", "path", "raw"), HOSTILE)
def test_no_request_body_makes_the_server_fail(
    client: httpx.Client, method: str, path: str, raw: bytes
) -> None:
    reply = client.request(method, path, content=raw, headers={"content-type": "application/json"})
    assert reply.status_code < 500, reply.text
    if reply.status_code >= 400:
        assert reply.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/work/%00",
        "/status/details/%00",
        "/work?ids=%00",
        "/status/details/" + "x" * 5000,
        "/audit/stale/nan",
        "/audit/stale/1e999",
        "/work/%ED%A0%80",
    ],
)
def test_no_url_makes_the_server_fail(client: httpx.Client, path: str) -> None:
    method = "DELETE" if path.startswith("/work?") else "GET"
    reply = client.request(method, path)
    assert reply.status_code < 500, reply.text


def test_bodies_on_get_and_delete_are_never_parsed(client: httpx.Client) -> None:
    [work_id] = deposit(client, work())
    garbage = {"content": b"{not json", "headers": {"content-type": "application/json"}}
    assert client.request("GET", "/status", **garbage).status_code == 200
    assert client.request("GET", f"/work/{work_id}", **garbage).status_code == 200
    reply = client.request("DELETE", "/work", params={"ids": work_id}, **garbage)
    assert reply.status_code == 200 and reply.json() is True
