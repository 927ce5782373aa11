"""Every buckets route but health and version needs a valid token with a scope (docs: read).

The routes are read from the application itself, so a route added later is
checked too. In process, over httpx's ASGI transport: no sockets.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re

import httpx
import pytest

from workflow.buckets import auth
from workflow.buckets.app import create_app
from workflow.buckets.settings import BucketsSettings

FULL, READ, WRITE = "full-7d1f2b3c4d5e6f70", "read-8e2a3b4c5d6e7f81", "write-9f3b4c5d6e7f8092"
WRONG = "wrong-0a1b2c3d4e5f6071"
#: What answers without a token: liveness and the version probe the public client sends.
OPEN = {
    ("GET", "/healthz"),
    ("GET", "/version"),
    ("HEAD", "/version"),
}
#: The API docs: open without tokens configured, behind the read scope with them.
DOCS = {
    ("GET", "/openapi.json"),
    ("HEAD", "/openapi.json"),
    ("GET", "/docs"),
    ("HEAD", "/docs"),
    ("GET", "/redoc"),
    ("HEAD", "/redoc"),
}


class Http:
    """Calls the application in process, over httpx's ASGI transport, its store open."""

    def __init__(self, app) -> None:
        self.app = app

    def run(self, calls: list[tuple[str, str, str | None]]) -> list[httpx.Response]:
        async def scenario() -> list[httpx.Response]:
            store = self.app.state.store
            await store.open()
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            try:
                async with httpx.AsyncClient(transport=transport, base_url="http://b") as http:
                    replies = []
                    for method, path, token in calls:
                        headers = {"x-access-token": token} if token else {}
                        body = {"json": {"query": {}}} if method in ("POST", "PUT") else {}
                        replies.append(await http.request(method, path, headers=headers, **body))
                    return replies
            finally:
                await store.close()

        return asyncio.run(scenario())

    def call(self, method: str, path: str, token: str | None = None) -> httpx.Response:
        return self.run([(method, path, token)])[0]


@pytest.fixture
def http(tmp_path) -> Http:
    settings = BucketsSettings(
        database=f"sqlite:///{tmp_path / 'guards.sqlite3'}",
        tokens=f"tests read,write {FULL}; reader read {READ}; writer write {WRITE}",
    )
    return Http(create_app(settings))


def routes(http: Http) -> list[tuple[str, str]]:
    """(method, concrete path) of every route the application serves.

    The API's routes come from its OpenAPI document (they live in routers), the
    routes kept out of it (the guarded docs) from the application's own list.
    """
    found = []
    for path, operations in http.app.openapi()["paths"].items():
        for method in sorted(operations):
            found.append((method.upper(), re.sub(r"\{[^}]+\}", "x", path)))
    for route in http.app.routes:
        for method in sorted(getattr(route, "methods", None) or []):
            found.append((method, re.sub(r"\{[^}]+\}", "x", route.path)))
    assert len(found) > 10, found
    return found


def test_every_route_but_health_and_version_needs_a_token(http) -> None:
    guarded = [route for route in routes(http) if route not in OPEN]
    assert guarded
    replies = http.run([(m, p, token) for m, p in guarded for token in (None, WRONG)])
    for (method, path), missing, wrong in zip(guarded, replies[::2], replies[1::2], strict=True):
        assert missing.status_code == 401, (method, path, missing.status_code)
        assert wrong.status_code == 403, (method, path, wrong.status_code)
        assert WRONG not in wrong.text


def test_the_open_routes_answer_without_a_token(http) -> None:
    open_routes = sorted(OPEN & set(routes(http)))
    assert ("HEAD", "/version") in open_routes and ("GET", "/healthz") in open_routes
    for route, reply in zip(
        open_routes, http.run([(m, p, None) for m, p in open_routes]), strict=True
    ):
        assert reply.status_code < 400, (route, reply.status_code)


def test_every_guarded_route_needs_exactly_one_scope(http) -> None:
    guarded = [route for route in routes(http) if route not in OPEN]
    replies = iter(http.run([(m, p, token) for m, p in guarded for token in (READ, WRITE, FULL)]))
    for method, path in guarded:
        read, write, full = next(replies), next(replies), next(replies)
        allowed = [
            scope
            for scope, reply in (("read", read), ("write", write))
            if reply.status_code not in (401, 403)
        ]
        assert len(allowed) == 1, (method, path, allowed)
        assert full.status_code not in (401, 403), (method, path)


def test_tokens_are_compared_in_constant_time_against_every_configured_token(monkeypatch):
    tokens = auth.parse_lines(f"a read {FULL}\nb read {READ}\nc write {WRITE}", "test")
    authenticator = auth.Authenticator(tokens)
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(left, right):
        compared.append((left, right))
        return real(left, right)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    for presented in (FULL, WRITE, WRONG, FULL[:-1], ""):
        compared.clear()
        authenticator.identify(presented)
        assert len(compared) == len(tokens), "stopped early: the time would tell which matched"
        # Fixed-size digests are compared, never the secrets, so the length of a
        # guess tells nothing either.
        assert {len(left) for left, _ in compared} == {32}
        assert all(isinstance(right, bytes) and len(right) == 32 for _, right in compared)


def test_no_token_reaches_a_log_record_or_a_reply(http, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = (FULL, READ, WRITE, WRONG)
    calls = [(method, path, token) for method, path in routes(http) for token in tokens]
    for (_, _, token), reply in zip(calls, http.run(calls), strict=True):
        assert token not in reply.text
    assert not any(token in record.getMessage() for record in caplog.records for token in tokens)


def test_the_docs_need_the_read_scope_when_tokens_are_configured(http) -> None:
    assert set(routes(http)) >= DOCS
    calls = [(method, path, token) for method, path in sorted(DOCS) for token in (READ, WRITE)]
    replies = http.run(calls)
    for (method, path, token), reply in zip(calls, replies, strict=True):
        expected = 200 if token == READ else 403
        assert reply.status_code == expected, (method, path, token, reply.status_code)
    openapi = http.call("GET", "/openapi.json", READ).json()
    assert "/work/withdraw" in openapi["paths"]
    assert "/docs" not in openapi["paths"]


def test_without_tokens_the_docs_are_open(tmp_path) -> None:
    open_app = Http(create_app(BucketsSettings(database=f"sqlite:///{tmp_path / 'open.sqlite3'}")))
    replies = open_app.run([(method, path, None) for method, path in sorted(DOCS)])
    assert [reply.status_code for reply in replies] == [200] * len(DOCS)
