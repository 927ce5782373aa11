"""A call's steps: what both clients carry out, each with its own way of waiting."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx
import pytest

from workflow.http import Buckets, ConnectError, operations
from workflow.http.exchange import Finished, Send, Sleep, advance

URL = "http://buckets.test"


def replies_twice() -> Generator[Any, Any, list[Any]]:
    request = httpx.Request("GET", f"{URL}/x")
    first = yield Send(request)
    second = yield Sleep(0.5)
    return [first, second]


def test_advance_passes_outcomes_in_and_ends_with_the_result() -> None:
    steps = replies_twice()
    assert isinstance(advance(steps, None), Send)
    response = httpx.Response(200)
    assert advance(steps, response) == Sleep(0.5)
    assert advance(steps, None) == Finished([response, None])


def test_advance_throws_a_failed_send_into_the_steps() -> None:
    steps = replies_twice()
    advance(steps, None)
    with pytest.raises(httpx.ConnectError):
        advance(steps, httpx.ConnectError("refused"))


def test_a_retried_call_is_a_send_a_sleep_and_a_send() -> None:
    """The retry rules live in the steps: the client only sends and sleeps."""
    with Buckets(baseurl=URL) as buckets:
        steps = buckets._steps(operations.status(None))
        first = advance(steps, None)
        assert isinstance(first, Send) and first.request.url == f"{URL}/status"
        assert isinstance(advance(steps, httpx.ConnectError("refused")), Sleep)
        assert isinstance(advance(steps, None), Send)
        reply = httpx.Response(200, json={"total": 0}, request=first.request)
        assert advance(steps, reply) == Finished({"total": 0})


def test_a_call_that_may_not_be_retried_ends_at_the_first_failure() -> None:
    with Buckets(baseurl=URL, retries=0) as buckets:
        steps = buckets._steps(operations.status(None))
        advance(steps, None)
        with pytest.raises(ConnectError, match="could not connect"):
            advance(steps, httpx.ConnectError("refused"))
