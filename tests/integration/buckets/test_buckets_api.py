"""The buckets wire contract, endpoint by endpoint, over HTTP on both stores.

Every test runs once on SQLite and once on PostgreSQL (the ``buckets``
fixture), each against a real server process with an empty store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from buckets_works import deposit, stored, view, withdraw, work

pytestmark = pytest.mark.integration


@pytest.fixture
def client(buckets) -> Iterator[httpx.Client]:
    with buckets.client() as client:
        yield client


# ----------------------------------------------------------------------------- service
def test_head_version_answers_200_without_a_body(client: httpx.Client) -> None:
    reply = httpx.head(f"{client.base_url}/version")
    assert reply.status_code == 200
    assert reply.content == b""


def test_version_is_a_truthy_json_object(client: httpx.Client) -> None:
    body = client.get("/version").json()
    assert body["name"] == "buckets"
    assert body["version"]


def test_healthz_names_the_store(client: httpx.Client, buckets) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "store": buckets.store}


def test_the_openapi_document_describes_the_contract_and_our_choices(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    assert "head" in paths["/version"]
    assert {"post", "put", "delete"} <= paths["/work"].keys()
    for path in (
        "/work/withdraw",
        "/view",
        "/status",
        "/status/details/{pipeline}",
        "/status/pipelines",
        "/audit/failed",
        "/audit/expired",
        "/audit/stale/{days}",
    ):
        assert path in paths
    description = document["info"]["description"]
    assert "idempotent" in description
    assert "1 + retries" in description
    assert "WorkDocument" in document["components"]["schemas"]
    body = paths["/work"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["items"]["$ref"] == "#/components/schemas/WorkDocument"


# ----------------------------------------------------------------------------- deposit
def test_deposit_answers_ids_in_input_order_when_return_ids_is_sent_twice(
    client: httpx.Client,
) -> None:
    works = [work(priority=p) for p in (1, 2, 3)]
    reply = client.post("/work?return_ids=True", params={"return_ids": "True"}, json=works)
    assert reply.status_code == 200
    ids = reply.json()
    assert len(ids) == 3 and all(isinstance(work_id, str) for work_id in ids)
    assert len(set(ids)) == 3
    assert [stored(client, work_id)["priority"] for work_id in ids] == [1, 2, 3]


@pytest.mark.parametrize("flag", ["False", "false"])
def test_deposit_without_ids_answers_true(client: httpx.Client, flag: str) -> None:
    reply = client.post("/work", params={"return_ids": flag}, json=[work()])
    assert reply.status_code == 200
    assert reply.json() is True
    assert client.get("/status").json()["total"] == 1


def test_deposit_queues_the_work_and_keeps_what_was_sent(client: httpx.Client) -> None:
    sent = work(
        priority=4,
        creation=1234.5,
        tags=["a", "b"],
        event=[7],
        site="testing",
        parameters={"x": [1, {"y": None}]},
        config={"parent": "root", "archive": {"results": False}},
    )
    [work_id] = deposit(client, sent)
    record = stored(client, work_id)
    assert record["id"] == work_id
    assert record["status"] == "queued"
    for field in ("priority", "creation", "tags", "event", "site", "parameters"):
        assert record[field] == sent[field]
    assert record["config"]["parent"] == "root"
    assert record["config"]["archive"]["results"] is False
    assert "_id" not in record


def test_deposit_keeps_a_given_id_and_a_repeated_id_changes_nothing(client: httpx.Client) -> None:
    first = work(id="operator-chosen-1", priority=2)
    assert deposit(client, first) == ["operator-chosen-1"]
    again = deposit(client, work(id="operator-chosen-1", priority=5), work(id="other"))
    assert again == ["operator-chosen-1", "other"]
    assert stored(client, "operator-chosen-1")["priority"] == 2
    assert client.get("/status").json()["total"] == 2


def test_a_batch_with_one_invalid_work_writes_nothing(client: httpx.Client) -> None:
    works = [work(), work(), work(), work(priority=9)]
    reply = client.post("/work", params={"return_ids": "True"}, json=works)
    assert reply.status_code == 422
    assert reply.json()["detail"] == "works[3].priority: Input should be less than or equal to 5"
    assert client.get("/status").json()["total"] == 0


# ----------------------------------------------------------------------------- withdraw
def test_withdraw_takes_the_highest_priority_across_pipelines(client: httpx.Client) -> None:
    deposit(
        client,
        work(pipeline="a", priority=2),
        work(pipeline="b", priority=5),
        work(pipeline="c", priority=5),
        work(pipeline="a", priority=3),
    )
    first = withdraw(client, pipeline={"$in": ["a", "b"]})
    second = withdraw(client, pipeline={"$in": ["a", "b"]})
    third = withdraw(client, pipeline={"$in": ["a", "b"]})
    assert (first["pipeline"], first["priority"]) == ("b", 5)
    assert (second["pipeline"], second["priority"]) == ("a", 3)
    assert (third["pipeline"], third["priority"]) == ("a", 2)
    assert withdraw(client, pipeline={"$in": ["a", "b"]}) is None


def test_withdraw_breaks_priority_ties_oldest_first(client: httpx.Client) -> None:
    now = time.time()
    ids = deposit(client, work(creation=now), work(creation=now - 10), work(creation=now - 5))
    order = [withdraw(client, pipeline="sample")["id"] for _ in range(3)]
    assert order == [ids[1], ids[2], ids[0]]


def test_withdraw_marks_the_work_running_with_start_and_attempt(client: httpx.Client) -> None:
    [work_id] = deposit(client, work(attempt=0))
    before = time.time()
    claimed = withdraw(client, pipeline="sample")
    assert claimed["id"] == work_id
    assert claimed["status"] == "running"
    assert before - 1 <= claimed["start"] <= time.time() + 1
    assert claimed["attempt"] == 1
    assert stored(client, work_id) == claimed


def test_withdraw_answers_json_null_when_nothing_matches(client: httpx.Client) -> None:
    reply = client.post("/work/withdraw", json={"pipeline": {"$in": ["nothing-here"]}})
    assert reply.status_code == 200
    assert reply.content == b"null"


def test_works_that_are_not_queued_are_never_handed_out(client: httpx.Client) -> None:
    ids = deposit(client, work(), work(), work())
    done = [
        stored(client, ids[0]) | {"status": "success"},
        stored(client, ids[1]) | {"status": "failure"},
        stored(client, ids[2]) | {"status": "running"},
    ]
    assert client.put("/work", json=done).json() is True
    assert withdraw(client, pipeline="sample") is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"site": "testing"}, "site"),
        ({"user": "bob"}, "user"),
        ({"priority": 4}, "priority"),
        ({"tags": {"$in": ["nightly", "other"]}}, "tags"),
        ({"event": {"$in": [99]}}, "event"),
        ({"config.parent": {"$in": ["root"]}}, "parent"),
    ],
)
def test_withdraw_filters_like_the_public_client_sends_them(
    client: httpx.Client, query: dict, expected: str
) -> None:
    decoy = work(priority=5)
    ids = dict(
        zip(
            ["decoy", "site", "user", "priority", "tags", "event", "parent"],
            deposit(
                client,
                decoy,
                work(site="testing", priority=1),
                work(user="bob", priority=1),
                work(priority=4),
                work(tags=["nightly"], priority=1),
                work(event=[5, 99], priority=1),
                work(config={"parent": "root"}, priority=1),
            ),
            strict=True,
        )
    )
    claimed = withdraw(client, pipeline="sample", **query)
    assert claimed is not None and claimed["id"] == ids[expected]


# ----------------------------------------------------------------------------- update, get, delete
def test_update_stores_outcome_and_rewritten_times(client: httpx.Client) -> None:
    [work_id] = deposit(client, work())
    claimed = withdraw(client, pipeline="sample")
    outcome = claimed | {
        "status": "success",
        "results": {"answer": 42},
        "stop": 99.5,
        "start": 10.0,
        "creation": 5.0,
    }
    reply = client.put("/work", json=[outcome])
    assert reply.status_code == 200 and reply.json() is True
    record = stored(client, work_id)
    assert (record["status"], record["results"], record["stop"]) == (
        "success",
        {"answer": 42},
        99.5,
    )
    assert (record["start"], record["creation"]) == (10.0, 5.0)


def test_an_update_naming_an_unknown_id_is_404_and_writes_nothing(client: httpx.Client) -> None:
    [work_id] = deposit(client, work())
    known = stored(client, work_id) | {"status": "success"}
    reply = client.put("/work", json=[known, work(id="no-such-work")])
    assert reply.status_code == 404
    assert "'no-such-work'" in reply.json()["detail"]
    assert stored(client, work_id)["status"] == "queued"


def test_an_update_back_to_queued_makes_the_work_claimable_again(client: httpx.Client) -> None:
    [work_id] = deposit(client, work())
    claimed = withdraw(client, pipeline="sample")
    client.put("/work", json=[claimed | {"status": "queued", "priority": 5}])
    again = withdraw(client, pipeline="sample")
    assert again is not None and again["id"] == work_id and again["attempt"] == 2


def test_get_of_an_unknown_work_is_404_naming_the_id(client: httpx.Client) -> None:
    reply = client.get("/work/missing-id")
    assert reply.status_code == 404
    assert reply.json() == {"detail": "work 'missing-id' does not exist"}


def test_delete_removes_the_listed_works_and_answers_true(client: httpx.Client) -> None:
    ids = deposit(client, work(), work(), work())
    reply = client.delete(
        "/work",
        params={"ids": [ids[0], ids[1], "unknown"]},
        headers={"content-type": "application/json", "content-length": "0"},
    )
    assert reply.status_code == 200 and reply.json() is True
    assert [w["id"] for w in view(client, {}, projection={"id": True})] == [ids[2]]
    assert client.get(f"/work/{ids[0]}").status_code == 404
    assert withdraw(client, pipeline="sample")["id"] == ids[2]


# ----------------------------------------------------------------------------- view
def test_view_filters_with_the_supported_operators(client: httpx.Client) -> None:
    now = time.time()
    a, b, c = deposit(
        client,
        work(tags=["x", "y"], creation=now - 30, config={"parent": "p1"}),
        work(tags=["y"], creation=now - 20, config={"parent": "p2", "archive": {"results": False}}),
        work(pipeline="other", creation=now - 10, retries=0),
    )

    def ids(query: dict) -> list[str]:
        return [w["id"] for w in view(client, query, projection={"id": True, "_id": False})]

    assert ids({"tags": "x"}) == [a]
    assert ids({"tags": {"$in": ["y"]}}) == [a, b]
    assert ids({"config.parent": {"$in": ["p2"]}}) == [b]
    assert ids({"config.archive.results": False}) == [b]
    assert ids({"creation": {"$gt": now - 25, "$lt": now}}) == [b, c]
    assert ids({"pipeline": {"$ne": "sample"}}) == [c]
    assert ids({"pipeline": {"$nin": ["other"]}, "tags": {"$exists": True}}) == [a, b]
    assert ids({"$expr": {"$gte": ["$attempt", "$retries"]}}) == [c]
    assert ids({"id": b}) == [b]
    assert ids({"pipeline": "none"}) == []


def test_view_projects_like_mongo_and_never_returns_underscore_id(client: httpx.Client) -> None:
    [work_id] = deposit(client, work(tags=["t"], config={"parent": "p"}))
    assert view(client, {}, projection={"id": True, "tags": 1, "_id": False}) == [
        {"id": work_id, "tags": ["t"]}
    ]
    assert view(client, {}, projection={"config.parent": True}) == [{"config": {"parent": "p"}}]
    whole = view(client, {}, projection={})[0]
    assert whole == stored(client, work_id)
    without = view(client, {}, projection={"config": False, "notify": 0})[0]
    assert "config" not in without and "notify" not in without and without["id"] == work_id


def test_paging_with_skip_and_limit_neither_repeats_nor_loses_works(client: httpx.Client) -> None:
    same_time = time.time()
    ids = deposit(
        client, *[work(creation=same_time if n % 2 else same_time - n) for n in range(23)]
    )
    pages = []
    for skip in range(0, 30, 5):
        pages += [w["id"] for w in view(client, {}, projection={"id": 1}, skip=skip, limit=5)]
    assert len(pages) == 23 and set(pages) == set(ids)
    everything = [w["id"] for w in view(client, {}, projection={"id": 1}, limit=None)]
    assert everything == pages
    assert len(view(client, {}, projection={"id": 1})) == 23  # the default limit is 100
    # A later page with a filter and a projection: both bind values around the paging.
    page = view(client, {"status": "queued"}, projection={"id": 1, "status": 1}, skip=3, limit=4)
    assert page == [{"id": work_id, "status": "queued"} for work_id in everything[3:7]]
    assert view(client, {"status": "queued"}, skip=20, limit=None) == [
        stored(client, work_id) for work_id in everything[20:]
    ]


# ----------------------------------------------------------------------------- status
def test_status_details_count_by_status_with_keys_in_order(client: httpx.Client) -> None:
    ids = deposit(client, *[work(pipeline="counted") for _ in range(4)], work(pipeline="elsewhere"))
    withdraw(client, pipeline="counted")
    finished = stored(client, ids[1]) | {"status": "failure"}
    client.put("/work", json=[finished])
    reply = client.get("/status/details/counted")
    assert list(reply.json().items()) == [
        ("total", 4),
        ("queued", 2),
        ("running", 1),
        ("success", 0),
        ("failure", 1),
    ]
    assert list(client.get("/status").json().items()) == [
        ("total", 5),
        ("queued", 3),
        ("running", 1),
        ("success", 0),
        ("failure", 1),
    ]
    assert client.get("/status/pipelines").json() == ["counted", "elsewhere"]


def test_status_of_an_unknown_pipeline_is_all_zero(client: httpx.Client) -> None:
    assert client.get("/status/details/never-used").json() == {
        "total": 0,
        "queued": 0,
        "running": 0,
        "success": 0,
        "failure": 0,
    }
    assert client.get("/status/pipelines").json() == []


# ----------------------------------------------------------------------------- audit
def test_audit_failed_requeues_failures_with_attempts_left(client: httpx.Client) -> None:
    ids = deposit(client, work(retries=2), work(retries=2), work(retries=0))
    failures = [
        stored(client, ids[0]) | {"status": "failure", "attempt": 2},  # 2 < 1 + 2: requeued
        stored(client, ids[1]) | {"status": "failure", "attempt": 3},  # used all 3 attempts
        stored(client, ids[2]) | {"status": "failure", "attempt": 1},  # 1 attempt for retries=0
    ]
    client.put("/work", json=failures)
    reply = client.get("/audit/failed")
    assert reply.status_code == 200 and reply.json() == 1
    assert [stored(client, work_id)["status"] for work_id in ids] == [
        "queued",
        "failure",
        "failure",
    ]
    assert withdraw(client, pipeline="sample")["id"] == ids[0]
    assert client.get("/audit/failed").json() == 0


def test_audit_expired_fails_running_works_past_their_timeout(client: httpx.Client) -> None:
    ids = deposit(client, work(timeout=60), work(timeout=60))
    for _ in ids:
        withdraw(client, pipeline="sample")
    overdue = stored(client, ids[0]) | {"start": time.time() - 3600}
    client.put("/work", json=[overdue])
    assert client.get("/audit/expired").json() == 1
    assert stored(client, ids[0])["status"] == "failure"
    assert stored(client, ids[1])["status"] == "running"
    assert client.get("/audit/failed").json() == 1  # and the next pass requeues it


def test_audit_stale_counts_old_works_and_deletes_nothing(client: httpx.Client) -> None:
    day = 86_400
    deposit(
        client,
        work(creation=time.time() - 8 * day),
        work(creation=time.time() - 8 * day),
        work(creation=time.time() - 1 * day),
    )
    reply = client.get("/audit/stale/7.0")
    assert reply.status_code == 200 and reply.json() == 2
    assert client.get("/audit/stale/0.5").json() == 3
    assert client.get("/status").json()["total"] == 3


def test_a_clean_store_audits_to_zero(client: httpx.Client) -> None:
    audit = {
        name: client.get(path).json()
        for name, path in [
            ("failed", "/audit/failed"),
            ("expired", "/audit/expired"),
            ("stale", "/audit/stale/7.0"),
        ]
    }
    assert audit == {"expired": 0, "failed": 0, "stale": 0}
