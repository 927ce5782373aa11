"""Tenancy over HTTP: a work token touches its own record only; pipeline tokens their pipelines.

A real buckets server (its own process, SQLite) with a signing key, an
unlimited token (the operator's), and tokens limited to pipelines. Work
tokens are minted as the operator mints them (``workflow.worktokens``).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from buckets_works import work

from fixtures.buckets import BucketsProcess
from workflow.worktokens import mint

pytestmark = pytest.mark.integration

KEY = secrets.token_urlsafe(48)
OPERATOR = f"op-{secrets.token_hex(16)}"
TEAM_A = f"team-a-{secrets.token_hex(16)}"
TEAM_A_READER = f"team-a-reader-{secrets.token_hex(16)}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BucketsProcess]:
    folder: Path = tmp_path_factory.mktemp("tenancy")
    process = BucketsProcess(
        database=f"sqlite:///{folder / 'tenancy.sqlite3'}",
        log_path=folder / "buckets.log",
        token=OPERATOR,
        more_tokens=(
            f"team-a-workers read,write {TEAM_A} team-a,team-a-nightly",
            f"team-a-dashboard read {TEAM_A_READER} team-a",
        ),
        signing_key=KEY,
        token_leeway=0,
    ).start()
    yield process
    process.stop()


def call(server: BucketsProcess, token: str, method: str, path: str, **options) -> httpx.Response:
    return httpx.request(
        method, f"{server.url}{path}", headers={"x-access-token": token}, timeout=30, **options
    )


def deposit(server: BucketsProcess, **fields) -> str:
    """A managed record, as the operator deposits each Work."""
    reply = call(
        server,
        OPERATOR,
        "POST",
        "/work",
        params={"return_ids": "True", "owner": "kubernetes-operator"},
        json=[work(status="queued", **fields)],
    )
    assert reply.status_code == 200, reply.text
    return reply.json()[0]


@pytest.fixture
def records(server: BucketsProcess) -> dict[str, str]:
    """Two Works' records in two teams' pipelines, and a token for attempt 1 of the first."""
    own = deposit(server, id=f"uid-a-{secrets.token_hex(4)}", pipeline="team-a", attempt=1)
    other = deposit(server, id=f"uid-b-{secrets.token_hex(4)}", pipeline="team-b", attempt=1)
    token = mint(KEY, record=own, attempt=1, lifetime=600, work="team-a/own")
    return {"own": own, "other": other, "token": token}


def stored(server: BucketsProcess, work_id: str) -> dict:
    reply = call(server, OPERATOR, "GET", f"/work/{work_id}")
    assert reply.status_code == 200, reply.text
    return reply.json()


# --------------------------------------------------------------------------- work tokens
def test_a_work_token_reads_and_updates_its_own_record(server, records) -> None:
    own, token = records["own"], records["token"]
    assert call(server, token, "GET", f"/work/{own}").json()["id"] == own
    view = call(server, token, "POST", "/view", json={"query": {"id": own}, "projection": {}})
    assert [found["id"] for found in view.json()] == [own]
    document = {**stored(server, own), "status": "success", "results": {"mean": 2.5}}
    reply = call(server, token, "PUT", "/work", json=[document])
    assert reply.status_code == 200, reply.text
    assert stored(server, own)["results"] == {"mean": 2.5}


def test_a_work_token_is_refused_on_another_record(server, records) -> None:
    other, token = records["other"], records["token"]
    before = stored(server, other)

    read = call(server, token, "GET", f"/work/{other}")
    assert read.status_code == 403
    assert read.json()["detail"].startswith("path.work_id: work token of record")

    for query in ({"id": other}, {"pipeline": "team-b"}, {}, {"id": {"$in": [other]}}):
        view = call(server, token, "POST", "/view", json={"query": query})
        assert view.status_code == 403, query
        assert view.json()["detail"].startswith("body.query.id:"), view.text

    overwrite = {**before, "status": "success", "results": {"stolen": True}}
    update = call(server, token, "PUT", "/work", json=[overwrite])
    assert update.status_code == 403
    assert update.json()["detail"].startswith("works[0].id:")

    delete = call(server, token, "DELETE", f"/work?ids={other}")
    assert delete.status_code == 403
    assert "may only read" in delete.json()["detail"] and "DELETE /work" in delete.json()["detail"]

    withdraw = call(server, token, "POST", "/work/withdraw", json={"pipeline": {"$in": ["team-b"]}})
    assert withdraw.status_code == 403
    assert "POST /work/withdraw" in withdraw.json()["detail"]

    assert stored(server, other) == before


def test_a_work_token_cannot_delete_withdraw_or_list_even_its_own(server, records) -> None:
    own, token = records["own"], records["token"]
    for method, path, body in (
        ("DELETE", f"/work?ids={own}", None),
        ("POST", "/work/withdraw", {"pipeline": {"$in": ["team-a"]}}),
        ("POST", "/work?return_ids=True", [work(pipeline="team-a")]),
        ("GET", "/status", None),
        ("GET", "/status/pipelines", None),
        ("GET", "/audit/failed", None),
        ("GET", "/openapi.json", None),
    ):
        options = {"json": body} if body is not None else {}
        reply = call(server, token, method, path, **options)
        assert reply.status_code == 403, (method, path, reply.text)
    assert stored(server, own)["status"] == "queued"


def test_a_work_token_writes_only_its_own_attempt(server, records) -> None:
    own, token = records["own"], records["token"]
    later = {**stored(server, own), "attempt": 2, "status": "running"}
    reply = call(server, token, "PUT", "/work", json=[later])
    assert reply.status_code == 403
    assert reply.json()["detail"] == (
        f"works[0].attempt: work token of record {own!r} (attempt 1) may only write "
        "attempt 1, not 2"
    )


def test_a_work_token_is_refused_after_its_lifetime(server, records) -> None:
    own = records["own"]
    token = mint(KEY, record=own, attempt=1, lifetime=4)
    assert call(server, token, "GET", f"/work/{own}").status_code == 200
    time.sleep(5.2)
    reply = call(server, token, "GET", f"/work/{own}")
    assert reply.status_code == 403
    assert reply.json()["detail"] == "the work token has expired (its attempt is over)"


def test_a_forged_or_changed_work_token_is_refused(server, records) -> None:
    own, other, token = records["own"], records["other"], records["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    # The same claims, pointed at the other record, under a key buckets does not hold.
    forged = jwt.encode({**claims, "sub": other}, secrets.token_urlsafe(48), algorithm="HS256")
    # The real token with its payload swapped for one naming the other record.
    header, _, signature = token.split(".")
    _, payload, _ = jwt.encode({**claims, "sub": other}, KEY + "x", algorithm="HS256").split(".")
    spliced = f"{header}.{payload}.{signature}"
    # No signature at all.
    unsigned = jwt.encode({**claims, "sub": other}, None, algorithm="none")
    for bad in (forged, spliced):
        reply = call(server, bad, "GET", f"/work/{other}")
        assert reply.status_code == 403
        assert "signature does not match" in reply.json()["detail"]
        assert bad not in reply.text
    reply = call(server, unsigned, "GET", f"/work/{other}")
    assert reply.status_code == 403
    assert reply.json()["detail"].startswith("the work token is not valid")
    assert call(server, token, "GET", f"/work/{own}").status_code == 200


# --------------------------------------------------------------------------- pipeline tokens
def test_a_pipeline_token_withdraws_only_from_its_pipelines(server, records) -> None:
    mine = [work(pipeline="team-a"), work(pipeline="team-a-nightly")]
    theirs = work(pipeline="team-b")
    reply = call(server, OPERATOR, "POST", "/work?return_ids=True", json=[*mine, theirs])
    ids = reply.json()

    refused = call(
        server, TEAM_A, "POST", "/work/withdraw", json={"pipeline": {"$in": ["team-a", "team-b"]}}
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "body.pipeline: token 'team-a-workers' may only use pipelines team-a, team-a-nightly, "
        "not 'team-b'"
    )
    assert call(server, TEAM_A, "POST", "/work/withdraw", json={"site": "local"}).status_code == 403

    claimed = []
    for _ in range(3):
        reply = call(
            server,
            TEAM_A,
            "POST",
            "/work/withdraw",
            json={"pipeline": {"$in": ["team-a", "team-a-nightly"]}},
        )
        assert reply.status_code == 200, reply.text
        if reply.json():
            claimed.append(reply.json()["id"])
    assert sorted(claimed) == sorted(ids[:2])
    assert stored(server, ids[2])["status"] == "queued"


def test_a_pipeline_token_reads_updates_and_deletes_only_its_pipelines(server, records) -> None:
    own, other = records["own"], records["other"]
    assert call(server, TEAM_A, "GET", f"/work/{own}").status_code == 200
    assert call(server, TEAM_A, "GET", f"/work/{other}").status_code == 403

    view = call(server, TEAM_A, "POST", "/view", json={"query": {}, "limit": None})
    assert {found["pipeline"] for found in view.json()} <= {"team-a", "team-a-nightly"}
    assert other not in {found["id"] for found in view.json()}
    refused = call(server, TEAM_A, "POST", "/view", json={"query": {"pipeline": "team-b"}})
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("body.query.pipeline:")

    moved = {**stored(server, other), "pipeline": "team-a"}
    update = call(server, TEAM_A, "PUT", "/work", json=[moved])
    assert update.status_code == 403
    assert "stored work is in pipeline 'team-b'" in update.json()["detail"]
    stolen = {**stored(server, own), "pipeline": "team-b"}
    assert call(server, TEAM_A, "PUT", "/work", json=[stolen]).status_code == 403

    delete = call(server, TEAM_A, "DELETE", f"/work?ids={own}&ids={other}")
    assert delete.status_code == 403
    assert delete.json()["detail"].startswith(f"query.ids[1]: work {other!r} is in pipeline")
    assert stored(server, own)["id"] == own

    assert call(server, TEAM_A, "GET", "/status/details/team-b").status_code == 403
    listed = call(server, TEAM_A, "GET", "/status/pipelines").json()
    assert "team-a" in listed and set(listed) <= {"team-a", "team-a-nightly"}
    counts = call(server, TEAM_A, "GET", "/status").json()
    assert counts["total"] < call(server, OPERATOR, "GET", "/status").json()["total"]
    assert call(server, TEAM_A, "GET", "/audit/expired").status_code == 403
    assert call(server, TEAM_A, "DELETE", f"/work?ids={own}").status_code == 200
    assert call(server, OPERATOR, "GET", f"/work/{own}").status_code == 404


def test_a_pipeline_token_deposits_only_into_its_pipelines(server) -> None:
    reply = call(
        server,
        TEAM_A,
        "POST",
        "/work?return_ids=True",
        json=[work(pipeline="team-a"), work(pipeline="team-b")],
    )
    assert reply.status_code == 403
    assert reply.json()["detail"].startswith("works[1].pipeline:")
    assert (
        call(server, TEAM_A_READER, "POST", "/work", json=[work(pipeline="team-a")]).status_code
        == 403
    )


def test_unlimited_tokens_still_reach_every_pipeline(server, records) -> None:
    for work_id in (records["own"], records["other"]):
        assert call(server, OPERATOR, "GET", f"/work/{work_id}").status_code == 200
    assert call(server, OPERATOR, "GET", "/audit/expired").status_code == 200


def test_a_workflow_run_worker_with_a_pipeline_token_runs_only_its_pipelines(server) -> None:
    ids = call(
        server,
        OPERATOR,
        "POST",
        "/work?return_ids=True",
        json=[work(pipeline="team-a", command=["true"]), work(pipeline="team-b")],
    ).json()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WORKFLOW_")},
        "WORKFLOW_HTTP_BASEURL": server.url,
        "WORKFLOW_HTTP_TOKEN": TEAM_A,
        "WORKFLOW_TERMINATION_LOG": "",
    }

    def run(*pipelines: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "workflow", "run", *pipelines, "--sleep", "0"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    refused = run("team-b")
    assert refused.returncode == 1, refused.stderr
    assert "body.pipeline: token 'team-a-workers' may only use pipelines" in refused.stderr
    assert stored(server, ids[1])["status"] == "queued"
    done = run("team-a")
    assert done.returncode == 0, done.stderr
    assert stored(server, ids[0])["status"] == "success"
