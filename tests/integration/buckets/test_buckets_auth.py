"""Tokens over HTTP: which routes need one, 401 versus 403, headers and scopes.

Runs against a real server with tokens configured (``buckets_auth``):
``.token`` may read and write, ``.read_token`` only read, ``.write_token`` only write.
"""

from __future__ import annotations

import httpx
import pytest
from buckets_works import work

pytestmark = pytest.mark.integration

READS = [
    ("GET", "/status", None),
    ("GET", "/status/pipelines", None),
    ("GET", "/status/details/sample", None),
    ("GET", "/audit/stale/7.0", None),
    ("GET", "/work/some-id", None),
    ("POST", "/view", {"query": {}}),
]
WRITES = [
    ("POST", "/work?return_ids=True", [work()]),
    ("POST", "/work/withdraw", {"pipeline": {"$in": ["sample"]}}),
    ("PUT", "/work", [work(id="x")]),
    ("DELETE", "/work?ids=x", None),
    ("GET", "/audit/failed", None),
    ("GET", "/audit/expired", None),
]
ROUTES = READS + WRITES


def call(server, method: str, path: str, body, headers: dict[str, str]) -> httpx.Response:
    options = {"json": body} if body is not None else {}
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=30, **options)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("HEAD", "/version"),
        ("GET", "/version"),
        ("GET", "/healthz"),
    ],
)
def test_probes_need_no_token(buckets_auth, method: str, path: str) -> None:
    assert httpx.request(method, f"{buckets_auth.url}{path}").status_code == 200


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
def test_the_docs_need_a_token_with_the_read_scope(buckets_auth, path: str) -> None:
    url = f"{buckets_auth.url}{path}"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"x-access-token": buckets_auth.write_token}).status_code == 403
    assert httpx.get(url, headers={"x-access-token": buckets_auth.read_token}).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_a_missing_token_is_401_saying_how_to_send_one(buckets_auth, method, path, body) -> None:
    reply = call(buckets_auth, method, path, body, {})
    assert reply.status_code == 401
    assert "x-access-token" in reply.json()["detail"]
    assert reply.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_a_wrong_token_is_403(buckets_auth, method, path, body) -> None:
    reply = call(buckets_auth, method, path, body, {"x-access-token": "not-a-token"})
    assert reply.status_code == 403
    assert reply.json()["detail"] == "the access token is not valid for this server"


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_a_read_only_token_cannot_write(buckets_auth, method, path, body) -> None:
    reply = call(buckets_auth, method, path, body, {"x-access-token": buckets_auth.read_token})
    assert reply.status_code == 403
    assert reply.json()["detail"].startswith("token 'reader' lacks the 'write' scope")


@pytest.mark.parametrize(("method", "path", "body"), READS)
def test_a_write_only_token_cannot_read(buckets_auth, method, path, body) -> None:
    reply = call(buckets_auth, method, path, body, {"x-access-token": buckets_auth.write_token})
    assert reply.status_code == 403
    assert "lacks the 'read' scope" in reply.json()["detail"]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_a_full_token_is_accepted_in_either_header(buckets_auth, method, path, body) -> None:
    for headers in (
        {"x-access-token": buckets_auth.token},
        {"authorization": f"Bearer {buckets_auth.token}"},
    ):
        reply = call(buckets_auth, method, path, body, headers)
        assert reply.status_code not in (401, 403), reply.text


def test_scoped_tokens_do_what_their_scope_allows(buckets_auth) -> None:
    deposit = call(
        buckets_auth,
        "POST",
        "/work?return_ids=True",
        [work()],
        {"x-access-token": buckets_auth.write_token},
    )
    assert deposit.status_code == 200
    counts = call(buckets_auth, "GET", "/status", None, {"x-access-token": buckets_auth.read_token})
    assert counts.json()["total"] == 1


def test_the_openapi_document_declares_both_token_headers(buckets_auth) -> None:
    document = httpx.get(
        f"{buckets_auth.url}/openapi.json", headers={"x-access-token": buckets_auth.read_token}
    ).json()
    schemes = document["components"]["securitySchemes"]
    assert {"type": "apiKey", "in": "header", "name": "x-access-token"}.items() <= next(
        scheme for scheme in schemes.values() if scheme["type"] == "apiKey"
    ).items()
    assert any(scheme.get("scheme") == "bearer" for scheme in schemes.values())
