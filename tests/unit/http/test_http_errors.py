"""The error tree: which error is which, and what its message says."""

from __future__ import annotations

import httpx
import pytest

from workflow.http import (
    BucketsError,
    ConfigurationError,
    ConnectError,
    Forbidden,
    InvalidRequest,
    InvalidResponse,
    NotFound,
    ServerError,
    StatusError,
    TransportError,
    Unauthorized,
    Unreachable,
)
from workflow.http.errors import status_error


def test_the_tree_keeps_could_not_complete_apart_from_answered_with_an_error() -> None:
    assert issubclass(ConnectError, TransportError)
    assert issubclass(Unreachable, TransportError)
    for kind in (InvalidRequest, Unauthorized, Forbidden, NotFound, ServerError):
        assert issubclass(kind, StatusError)
        assert not issubclass(kind, TransportError)
    for kind in (ConfigurationError, TransportError, StatusError, InvalidResponse):
        assert issubclass(kind, BucketsError)


def test_a_configuration_error_is_also_a_value_error() -> None:
    assert issubclass(ConfigurationError, ValueError)


def test_a_status_error_carries_method_url_status_and_detail() -> None:
    request = httpx.Request("PUT", "http://b.test/work")
    error = status_error(httpx.Response(409, json={"message": "stale"}, request=request))
    assert isinstance(error, InvalidRequest)
    assert (error.method, error.url, error.status_code, error.detail) == (
        "PUT",
        "http://b.test/work",
        409,
        "stale",
    )
    assert str(error) == "PUT http://b.test/work was answered with 409 Conflict: stale"


def test_a_long_server_message_is_shortened() -> None:
    request = httpx.Request("GET", "http://b.test/status")
    error = status_error(httpx.Response(500, text="x" * 5000, request=request))
    assert len(error.detail) == 500 and error.detail.endswith("…")


def test_an_unknown_status_code_still_reads_as_a_sentence() -> None:
    request = httpx.Request("GET", "http://b.test/status")
    error = status_error(httpx.Response(599, request=request))
    assert str(error).startswith("GET http://b.test/status was answered with 599")


def test_unreachable_lists_every_url_and_its_reason() -> None:
    failures: list[tuple[str, BucketsError]] = [
        ("http://a.test", ConnectError("HEAD", "http://a.test/version", "could not connect")),
        ("http://u:pw@b.test", TransportError("HEAD", "http://b.test/version", "no reply")),
    ]
    error = Unreachable(failures)
    message = str(error)
    assert "none of the 2 base URLs" in message
    assert (
        "http://a.test: HEAD http://a.test/version could not complete: could not connect" in message
    )
    assert "http://b.test: " in message and "pw" not in message


def test_attempts_are_mentioned_only_after_retries() -> None:
    error = TransportError("GET", "http://b.test/status", "no reply")
    assert "gave up" not in str(error)
    error.attempts = 4
    assert str(error).endswith("(gave up after 4 attempts)")


@pytest.mark.parametrize("kind", [TransportError, ConnectError])
def test_transport_errors_redact_credentials(kind: type[TransportError]) -> None:
    error = kind("GET", "http://me:secret@b.test/x", "boom")
    assert "secret" not in str(error) and "secret" not in repr(error) and "secret" not in error.url
