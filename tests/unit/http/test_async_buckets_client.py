"""The async buckets client speaks the same API with the same retry rules as the sync one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from unit.http.mock_server import Script, answer
from workflow.http import AsyncBuckets, NotFound, ServerError, TransportError

FAKE_TOKEN = "async-secret"  # a made-up token


def run(script: Script, use: Callable[[AsyncBuckets], Awaitable[Any]], **options: Any) -> Any:
    async def main() -> Any:
        settings = {"baseurl": "http://buckets.test", "token": FAKE_TOKEN, "backoff": 0.001}
        async with AsyncBuckets(transport=script.transport, **{**settings, **options}) as buckets:
            return await use(buckets)

    return asyncio.run(main())


def test_withdraw_sends_the_filter_document_with_the_token() -> None:
    script = Script(default=answer(body={"id": "1"}))
    work = run(script, lambda b: b.withdraw(["a"], site="local", tags=["t"]))
    assert work == {"id": "1"}
    assert script.body() == {"pipeline": {"$in": ["a"]}, "site": "local", "tags": {"$in": ["t"]}}
    assert script.last.headers["x-access-token"] == FAKE_TOKEN


def test_withdraw_is_never_retried() -> None:
    script = Script([httpx.ReadTimeout("lost")], default=answer(body={"id": "2"}))
    with pytest.raises(TransportError):
        run(script, lambda b: b.withdraw("a"))
    assert len(script.requests) == 1


def test_updates_are_retried_after_5xx() -> None:
    script = Script([answer(503, {"detail": "busy"})], default=answer(body=True))
    assert run(script, lambda b: b.update([{"id": "1"}])) is True
    assert len(script.requests) == 2


def test_retries_give_up_with_the_last_error() -> None:
    script = Script(default=answer(500, {"detail": "broken"}))
    with pytest.raises(ServerError, match="broken"):
        run(script, lambda b: b.status("p"), retries=1)
    assert len(script.requests) == 2


def test_delete_ids_goes_in_chunks_of_100() -> None:
    script = Script(default=answer(body=True))
    assert run(script, lambda b: b.delete_ids([str(i) for i in range(101)])) is True
    assert [len(r.url.params.get_list("ids")) for r in script.requests] == [100, 1]


def test_deposit_with_owner_and_ids() -> None:
    script = Script(default=answer(body=["w1"]))
    ids = run(script, lambda b: b.deposit([{"id": "w1"}], return_ids=True, owner="op"))
    assert ids == ["w1"] and script.last.url.params["owner"] == "op"


def test_get_of_an_unknown_id_raises_not_found() -> None:
    script = Script(default=answer(404, {"detail": "no such work"}))
    with pytest.raises(NotFound, match="no such work"):
        run(script, lambda b: b.get("x"))


def test_audit_and_info_and_ping() -> None:
    script = Script(
        [httpx.Response(200), answer(body=0), answer(body=0), answer(body=0), answer(body={"v": 1})]
    )

    async def use(buckets: AsyncBuckets) -> Any:
        await buckets.ping()
        return await buckets.audit(), await buckets.info()

    audit, info = run(script, use)
    assert audit == {"failed": 0, "expired": 0, "stale": 0}
    assert info["server"] == {"v": 1}
    assert "x-access-token" not in script.requests[0].headers
