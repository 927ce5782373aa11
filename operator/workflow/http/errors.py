"""What can go wrong when talking to buckets, as a small tree of exceptions.

Callers usually need to tell three situations apart, so each has its branch::

    BucketsError                  anything this package raises about buckets
    ├── ConfigurationError        nothing says where buckets is
    ├── TransportError            the request could not complete (no reply)
    │   ├── ConnectError          not even a connection: nothing reached the server
    │   └── Unreachable           none of the configured base URLs answered
    ├── StatusError               the server answered with an error status
    │   ├── InvalidRequest        400, 409, 422: the server rejected what was sent
    │   │   └── Conflict          409: the stored record is newer than what was sent
    │   ├── Unauthorized          401: no token, or a token the server does not know
    │   ├── Forbidden             403: the token may not do this
    │   ├── NotFound              404
    │   └── ServerError           5xx: the server failed while handling the request
    └── InvalidResponse           the server answered 2xx with a reply that makes no sense

A ``ConnectError`` is always safe to retry; after any other ``TransportError``
the request may or may not have been carried out. Messages are sentences that
name the request (method and URL) and, for a ``StatusError``, the server's own
explanation. No message, ``repr`` or attribute holds the access token: tokens
travel in a header, and URLs are shown without any user name or password.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "BucketsError",
    "ConfigurationError",
    "Conflict",
    "ConnectError",
    "Forbidden",
    "InvalidRequest",
    "InvalidResponse",
    "NotFound",
    "ServerError",
    "StatusError",
    "TransportError",
    "Unauthorized",
    "Unreachable",
]

#: Longest server explanation quoted in a message, in characters.
DETAIL_LIMIT = 500


def redact_url(url: httpx.URL | str) -> str:
    """``url`` as text, without any user name or password it carries."""
    url = httpx.URL(str(url))
    if url.userinfo:
        url = url.copy_with(username=None, password=None)
    return str(url)


class BucketsError(Exception):
    """Base of every error about talking to buckets.

    ``attempts`` is how many times the request was sent before giving up
    (more than 1 when it was retried); the message says so.
    """

    attempts: int = 1

    def __str__(self) -> str:
        text = super().__str__()
        if self.attempts > 1:
            text += f" (gave up after {self.attempts} attempts)"
        return text


class ConfigurationError(BucketsError, ValueError):
    """No usable buckets base URL is configured, so there is nothing to connect to."""


class TransportError(BucketsError):
    """The request could not complete: refused connection, timeout, dropped reply.

    ``method`` and ``url`` name the request; ``reason`` says what happened.
    """

    def __init__(self, method: str, url: httpx.URL | str, reason: str) -> None:
        self.method = method
        self.url = redact_url(url)
        self.reason = reason
        super().__init__(f"{method} {self.url} could not complete: {reason}")


class ConnectError(TransportError):
    """No connection could be made, so nothing reached the server; always safe to retry."""


class Unreachable(TransportError):
    """None of the configured base URLs answered ``HEAD /version``.

    ``failures`` pairs each URL tried with the error it gave, in the order tried.
    """

    def __init__(self, failures: list[tuple[str, BucketsError]]) -> None:
        self.failures = [(redact_url(url), error) for url, error in failures]
        self.method = "HEAD"
        self.url = self.failures[0][0] if self.failures else ""
        self.reason = "; ".join(f"{url}: {error}" for url, error in self.failures)
        count = len(self.failures)
        BucketsError.__init__(
            self,
            f"buckets is unreachable: none of the {count} base URL{'s' if count != 1 else ''} "
            f"tried answered HEAD /version. {self.reason}",
        )


class StatusError(BucketsError):
    """The server answered with an error status (400 or above).

    ``status_code`` is the HTTP status, ``detail`` the server's explanation
    (its JSON ``detail``/``message``/``error``, or the start of its text),
    ``method`` and ``url`` name the request.
    """

    def __init__(self, method: str, url: httpx.URL | str, status_code: int, detail: str) -> None:
        self.method = method
        self.url = redact_url(url)
        self.status_code = status_code
        self.detail = detail
        phrase = httpx.codes.get_reason_phrase(status_code) or "Error"
        explanation = f": {detail}" if detail else ""
        super().__init__(
            f"{method} {self.url} was answered with {status_code} {phrase}{explanation}"
        )


class InvalidRequest(StatusError):
    """The server rejected what was sent (400, 409 or 422); sending it again will not help."""


class Conflict(InvalidRequest):
    """409: buckets holds a newer record than the one sent (a guarded update); nothing changed."""


class Unauthorized(StatusError):
    """401: the server wants a token, or does not know the one sent."""


class Forbidden(StatusError):
    """403: the token sent may not do this."""


class NotFound(StatusError):
    """404: the server has no such work or endpoint."""


class ServerError(StatusError):
    """5xx: the server failed while handling the request."""


class InvalidResponse(BucketsError):
    """The server answered with success but its reply is not what the API promises."""

    def __init__(self, method: str, url: httpx.URL | str, problem: str) -> None:
        self.method = method
        self.url = redact_url(url)
        self.problem = problem
        super().__init__(f"{method} {self.url} answered with an unexpected reply: {problem}")


_BY_STATUS: dict[int, type[StatusError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
}


def server_detail(response: httpx.Response) -> str:
    """The server's own explanation of an error reply, as one short line."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    detail: Any = None
    if isinstance(body, dict):
        for key in ("detail", "message", "error"):
            if body.get(key):
                detail = body[key]
                break
    elif isinstance(body, str):
        detail = body
    if isinstance(detail, list):
        # FastAPI-style validation errors: [{"loc": [...], "msg": "..."}, ...]
        detail = "; ".join(_describe_problem(problem) for problem in detail)
    if detail is None:
        detail = response.text
    text = " ".join(str(detail).split())
    if len(text) > DETAIL_LIMIT:
        text = text[: DETAIL_LIMIT - 1] + "…"
    return text


def _describe_problem(problem: Any) -> str:
    if isinstance(problem, dict) and "msg" in problem:
        location = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
        return f"{location}: {problem['msg']}" if location else str(problem["msg"])
    return str(problem)


def status_error(response: httpx.Response) -> StatusError:
    """The error that describes ``response``, whose status is 400 or above."""
    status = response.status_code
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else StatusError)
    request = response.request
    return kind(request.method, request.url, status, server_detail(response))
