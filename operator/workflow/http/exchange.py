"""What both buckets clients do around a request, written once and without any I/O.

``Buckets`` and ``AsyncBuckets`` differ only in how they wait: one blocks the
calling thread, the other awaits (and keeps a limit on the requests in
flight). Everything else a call does - building its requests, telling a
failure from a reply, reading the reply, deciding whether and when to try
again - is written as a generator of *steps*:

- it yields ``Send(request)`` and is given back the ``httpx.Response``, or has
  the ``httpx.RequestError`` of the failed send thrown into it;
- it yields ``Sleep(seconds)`` and is given back ``None`` after the wait;
- it returns the call's result, or raises one of our errors.

A client's driver only carries out the steps (see ``advance``), so the rules
cannot drift apart between the two clients. This module holds the steps and
the pure functions that interpret what httpx gave back; the generators that
combine them with a client's settings live on the clients' shared base.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from workflow.http.errors import ConnectError, InvalidResponse, TransportError, status_error
from workflow.http.operations import Call

__all__ = [
    "Finished",
    "Send",
    "Sleep",
    "Step",
    "StepResult",
    "Steps",
    "advance",
    "check_ping",
    "decode",
    "transport_error",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """Send ``request``; the step is given back the response, or thrown the httpx error."""

    request: httpx.Request
    #: The auth to send with: the client's (its token), or ``None`` for no token at all.
    auth: Any = httpx.USE_CLIENT_DEFAULT


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` before the next step (a backoff between retries)."""

    seconds: float


@dataclass(frozen=True)
class Finished(Generic[T]):
    """The steps are done and ``value`` is the call's result."""

    value: T


Step = Send | Sleep
#: What a driver hands back after a step: a response, the error of a failed send, or nothing.
StepResult = httpx.Response | httpx.RequestError | None
#: The steps of one call, ending with its result; sent the response to a ``Send``,
#: ``None`` after a ``Sleep``.
Steps = Generator[Step, Any, T]


def advance(steps: Steps[T], result: StepResult) -> Step | Finished[T]:
    """Give ``steps`` the result of its last step; the next step, or ``Finished``.

    Errors the steps raise (ours, or an operation's ``ValueError``) pass through to
    the driver's caller.
    """
    try:
        if isinstance(result, httpx.RequestError):
            return steps.throw(result)
        return steps.send(result)
    except StopIteration as done:
        return Finished(done.value)


def transport_error(
    method: str, url: httpx.URL, error: httpx.RequestError, timeout: float
) -> TransportError:
    """Our error for an httpx failure; ``ConnectError`` when nothing reached the server."""
    detail = str(error) or type(error).__name__
    if isinstance(error, httpx.ConnectTimeout):
        return ConnectError(method, url, f"no connection within {timeout:g} s")
    if isinstance(error, httpx.PoolTimeout):
        return ConnectError(method, url, f"no free connection within {timeout:g} s")
    if isinstance(error, httpx.ConnectError):
        return ConnectError(method, url, f"could not connect ({detail})")
    if isinstance(error, httpx.TimeoutException):
        return TransportError(method, url, f"no reply within {timeout:g} s")
    if isinstance(error, httpx.RemoteProtocolError):
        return TransportError(method, url, f"the server closed the connection mid-reply ({detail})")
    return TransportError(method, url, f"{type(error).__name__}: {detail}")


def decode(call: Call, response: httpx.Response) -> Any:
    """The JSON reply to ``call``, or ``None`` where the call reads none; raises our errors."""
    request = response.request
    if response.status_code >= 400:
        raise status_error(response)
    if response.is_redirect:
        location = response.headers.get("location", "elsewhere")
        raise InvalidResponse(
            request.method,
            request.url,
            f"it redirects to {location}; use that address as the base URL",
        )
    if not call.json_reply:
        return None
    if response.status_code == 204 or not response.content.strip():
        if call.empty_ok:
            return None
        raise InvalidResponse(request.method, request.url, "the body is empty, not JSON")
    try:
        return response.json()
    except ValueError:
        start = " ".join(response.text.split())[:100]
        raise InvalidResponse(
            request.method, request.url, f"the body is not JSON: {start!r}"
        ) from None


def check_ping(response: httpx.Response) -> None:
    """Accept only a 2xx answer to ``HEAD /version``; a redirect means the wrong base URL."""
    if response.status_code >= 400:
        raise status_error(response)
    if not response.is_success:
        raise InvalidResponse(
            "HEAD", response.request.url, f"status {response.status_code}, where 2xx was expected"
        )
