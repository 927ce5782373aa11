"""Clients of the buckets work queue: ``Buckets`` (sync) and ``AsyncBuckets`` (async).

Both speak the wire contract of the public ``workflow-core`` client (same
paths, bodies and replies) with three differences a user notices:

- one pooled connection per client instance, reused across calls, and a
  timeout on every request, not only on deposits;
- retries only where they cannot do anything twice (see
  ``workflow.http.retrying``), with bounded exponential backoff, and never
  after a 4xx answer;
- errors from ``workflow.http.errors`` whose messages name the request and the
  server's explanation, instead of a bare ``HTTPError`` or ``RetryError``.

The token is sent as ``x-access-token`` on every call except ``ping()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, SecretStr

from workflow import __version__
from workflow.http import operations
from workflow.http.errors import BucketsError, ConfigurationError, InvalidResponse, redact_url
from workflow.http.exchange import (
    Finished,
    Send,
    Sleep,
    Step,
    StepResult,
    Steps,
    advance,
    check_ping,
    decode,
    transport_error,
)
from workflow.http.operations import Call, Operation, UnexpectedReply
from workflow.http.retrying import Backoff, wait_before_retry

__all__ = ["DEFAULT_TIMEOUT", "AsyncBuckets", "Buckets", "TokenAuth"]

logger = logging.getLogger("workflow.http")

T = TypeVar("T")

#: Seconds any one request may take, unless the client is built with another timeout.
DEFAULT_TIMEOUT = 15.0
#: Requests one ``AsyncBuckets`` has in flight at once; more calls wait their turn.
#: httpx would queue them inside its connection pool, and every hand-over of a
#: connection there scans the queue and checks every connection (a poll each):
#: measured with 300 calls at once (the operator makes one per Work), a call
#: cost 14 ms of CPU and calls timed out waiting for a connection; with 8 in
#: flight, 1.1 ms (16: 1.8 ms; both with sniffio installed, which httpcore otherwise
#: tries to import on every request), and the same calls finished 7 times sooner.
MAX_CONCURRENT_REQUESTS = 8
#: Seconds ``ping()`` waits for ``HEAD /version``.
PING_TIMEOUT = 5.0
#: Name of the header that carries the access token.
TOKEN_HEADER = "x-access-token"  # noqa: S105 (a header name, not a secret)

Work = Mapping[str, Any] | BaseModel


class TokenAuth(httpx.Auth):
    """Adds the access token to each request; its repr never shows the token."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers[TOKEN_HEADER] = self._token.get_secret_value()
        yield request

    def __repr__(self) -> str:
        return "TokenAuth(token='**********')"


def _checked_baseurl(baseurl: str) -> str:
    if not isinstance(baseurl, str) or not baseurl.strip():
        raise ConfigurationError(
            f"the buckets base URL must be a non-empty string, not {baseurl!r}"
        )
    text = baseurl.strip().rstrip("/")
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as error:
        raise ConfigurationError(f"the buckets base URL {text!r} is not a URL: {error}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"the buckets base URL {redact_url(url)!r} must start with http:// or https:// "
            "and name a host"
        )
    return text


def _secret(token: SecretStr | str | None) -> SecretStr | None:
    if token is None or isinstance(token, SecretStr):
        return token or None
    return SecretStr(token) if token else None


class _Base:
    """What both clients share: settings, and every call as steps without I/O.

    A subclass opens ``_client`` and carries the steps out (see
    ``workflow.http.exchange``): sending, sleeping, and nothing else.
    """

    _client: httpx.Client | httpx.AsyncClient

    def __init__(
        self,
        *,
        baseurl: str,
        token: SecretStr | str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        retry_budget: float = 30.0,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.baseurl: str = _checked_baseurl(baseurl)
        if not 0 < timeout <= 600:
            raise ValueError(f"timeout must be between 0 and 600 seconds, not {timeout}")
        self.timeout: float = float(timeout)
        self.backoff = Backoff(
            retries=retries, initial=backoff, maximum=max_backoff, budget=retry_budget
        )
        self._token = _secret(token)
        self._client = self._open(transport)

    def _open(self, transport: Any) -> httpx.Client | httpx.AsyncClient:
        """The subclass's pool of connections, on ``transport`` (``None``: the network)."""
        raise NotImplementedError

    @property
    def authenticated(self) -> bool:
        """Whether requests carry a token."""
        return self._token is not None

    def _options(self) -> dict[str, Any]:
        return {
            "base_url": self.baseurl,
            "timeout": self.timeout,
            "auth": TokenAuth(self._token) if self._token else None,
            "headers": {
                "Accept": "application/json",
                "User-Agent": f"workflow/{__version__} httpx/{httpx.__version__}",
            },
            "follow_redirects": False,
        }

    def _build(self, call: Call) -> httpx.Request:
        options: dict[str, Any] = {"params": call.params or None}
        if call.body is not operations.NO_BODY:
            options["json"] = call.body
        return self._client.build_request(call.method, call.path, **options)

    # The steps of a call (see ``workflow.http.exchange``); the subclasses carry them out.
    def _steps(self, operation: Operation[T]) -> Steps[T]:
        """The steps of one operation: each call of its operation, retried as its rule allows."""
        try:
            call = next(operation)
            while True:
                reply = yield from self._attempts(call)
                try:
                    call = operation.send(reply)
                except UnexpectedReply as problem:
                    raise self._unexpected(call, problem) from None
        except StopIteration as done:
            result: T = done.value
            return result

    def _attempts(self, call: Call) -> Steps[Any]:
        """``call`` sent until it succeeds or fails for good, with a backoff between tries."""
        retry, waited = 0, 0.0
        while True:
            try:
                return (yield from self._attempt(call))
            except BucketsError as error:
                retry += 1
                delay = wait_before_retry(self.backoff, call.replay, error, retry, waited)
            yield Sleep(delay)
            waited += delay

    def _attempt(self, call: Call) -> Steps[Any]:
        """One request of ``call``; its decoded reply.

        The time logged runs from handing the request to the client until its
        reply, so for ``AsyncBuckets`` it includes any wait for a free slot.
        """
        request = self._build(call)
        started = time.monotonic()
        response = yield from self._send(request, self.timeout)
        logger.debug(
            "%s %s -> %d in %.0f ms",
            call.method,
            redact_url(request.url),
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return decode(call, response)

    def _ping_steps(self, timeout: float) -> Steps[None]:
        """``HEAD /version`` once, without the token: a check that must not wait on retries."""
        request = self._client.build_request("HEAD", "/version", timeout=timeout)
        response = yield from self._send(request, timeout, auth=None)
        check_ping(response)

    @staticmethod
    def _send(
        request: httpx.Request, timeout: float, auth: Any = httpx.USE_CLIENT_DEFAULT
    ) -> Steps[httpx.Response]:
        """Send ``request``; its response, or our ``TransportError`` when none came."""
        try:
            response: httpx.Response = yield Send(request, auth)
            return response
        except httpx.RequestError as error:
            raise transport_error(request.method, request.url, error, timeout) from None

    def _unexpected(self, call: Call, problem: UnexpectedReply) -> InvalidResponse:
        url = httpx.URL(self.baseurl + call.path)
        return InvalidResponse(call.method, url, str(problem))

    def _client_info(self) -> dict[str, Any]:
        return {
            "baseurl": redact_url(self.baseurl),
            "timeout": self.timeout,
            "retries": self.backoff.retries,
            "authenticated": self.authenticated,
            "version": __version__,
        }

    def __repr__(self) -> str:
        token = "'**********'" if self._token else "None"
        return (
            f"{type(self).__name__}(baseurl={redact_url(self.baseurl)!r}, token={token}, "
            f"timeout={self.timeout:g}, retries={self.backoff.retries})"
        )


class Buckets(_Base):
    """Synchronous client of the buckets work queue.

    One instance keeps one pool of connections; close it with ``close()`` or
    use it as a context manager. Every keyword has a default but ``baseurl``.

    Example::

        with Buckets(baseurl="http://127.0.0.1:8004", token=token) as buckets:
            [work_id] = buckets.deposit([work.payload], return_ids=True)
            work = buckets.withdraw("sample")
    """

    _client: httpx.Client

    def _open(self, transport: httpx.BaseTransport | None) -> httpx.Client:
        client = httpx.Client(transport=transport, **self._options())
        # A client dropped without close() (e.g. with the Work that made it)
        # still closes its pooled connections instead of leaking sockets.
        self._closer = weakref.finalize(self, client.close)
        return client

    # ------------------------------------------------------------------ plumbing
    def _run(self, operation: Operation[T]) -> T:
        return self._drive(self._steps(operation))

    def _drive(self, steps: Steps[T]) -> T:
        """Carry out ``steps`` in this thread; their result."""
        result: StepResult = None
        while not isinstance(step := advance(steps, result), Finished):
            result = self._carry_out(step)
        return step.value

    def _carry_out(self, step: Step) -> StepResult:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        try:
            return self._client.send(step.request, auth=step.auth)
        except httpx.RequestError as error:
            return error

    def close(self) -> None:
        """Close the pooled connections."""
        self._closer()

    def __enter__(self) -> Buckets:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ API
    def ping(self, timeout: float = PING_TIMEOUT) -> None:
        """Check that the server answers ``HEAD /version`` with 2xx (sent without token).

        Raises ``TransportError`` or ``StatusError`` otherwise; never retries.
        """
        self._drive(self._ping_steps(timeout))

    def deposit(
        self, works: Sequence[Work], return_ids: bool = False, *, owner: str | None = None
    ) -> bool | list[str]:
        """Store works in the queue; with ``return_ids`` return their ids, in order.

        Works are mappings (``work.payload``) or ``Work``/``WorkDocument`` objects.
        ``owner``, when given, is sent as the ``owner`` query parameter (an
        extension of our server; the public API has none): the works are then
        *managed* by ``owner``, who runs them itself. Our server stores them
        with the status they carry and never hands them out to a withdraw nor
        re-queues or expires them in its audits, so a worker cannot run a work
        the operator is running. An ``owner`` outside 1-64 characters of
        ``[A-Za-z0-9._:/-]`` is refused (422).
        Retried after any transport error or 5xx only when every work carries an
        ``id`` (such deposits are idempotent); otherwise only when the
        connection failed before anything was sent.
        """
        return self._run(operations.deposit(works, return_ids, owner))

    def withdraw(
        self,
        pipeline: str | Iterable[str],
        event: Iterable[int] | None = None,
        site: str | None = None,
        priority: int | None = None,
        user: str | None = None,
        tags: Iterable[str] | None = None,
        parent: str | Iterable[str] | None = None,
    ) -> dict[str, Any] | None:
        """Claim the most urgent queued work matching the filters; ``None`` if there is none.

        The server marks the work ``running``. Never retried: after a
        ``TransportError`` the work may have been claimed, and the caller decides.
        """
        query = operations.withdraw_filter(pipeline, event, site, priority, user, tags, parent)
        return self._run(operations.withdraw(query))

    def update(self, works: Sequence[Work], *, guarded: bool = False) -> bool:
        """Overwrite the stored works that have these ids with these documents.

        ``guarded``: only if no stored work is further along (a later attempt, or
        this attempt already ended); otherwise ``Conflict`` and nothing is written.
        """
        return self._run(operations.update(works, guarded))

    def get(self, work_id: str) -> dict[str, Any]:
        """The stored document of one work; ``NotFound`` if there is none with that id."""
        return self._run(operations.get(work_id))

    def delete_ids(self, ids: Iterable[str]) -> bool:
        """Delete the works with these ids, 100 per request; ``False`` when given no id."""
        return self._run(operations.delete_ids(ids))

    def delete_many(
        self,
        pipeline: str,
        status: str | None = None,
        events: Iterable[int] | None = None,
        tags: Iterable[str] | None = None,
        parent: str | None = None,
        force: bool = False,
        limit: int | None = 100,
    ) -> bool:
        """Delete up to ``limit`` works of a pipeline matching the filters.

        Returns ``False`` when nothing matches. Without ``force=True`` nothing
        is deleted: a ``ValueError`` says how many works would have been.
        """
        return self._run(
            operations.delete_many(pipeline, status, events, tags, parent, force, limit)
        )

    def view(
        self,
        query: Mapping[str, Any],
        projection: Mapping[str, Any] | None = None,
        skip: int = 0,
        limit: int | None = 100,
    ) -> list[dict[str, Any]]:
        """Works matching a Mongo-style ``query``, with an optional ``projection``."""
        return self._run(operations.view(query, projection, skip, limit))

    def status(self, pipeline: str | None = None) -> dict[str, Any]:
        """Counts of works by status, overall or for one pipeline (with ``total``)."""
        return self._run(operations.status(pipeline))

    def pipelines(self) -> list[str]:
        """Names of the pipelines that hold works."""
        return self._run(operations.pipelines())

    def audit(self) -> dict[str, Any]:
        """Run the failed, expired and stale audits; their counts by name."""
        return self._run(operations.audit())

    def info(self) -> dict[str, Any]:
        """This client's settings (without the token) and the server's version document."""
        return {"client": self._client_info(), "server": self._run(operations.version())}


class AsyncBuckets(_Base):
    """Asynchronous client of the buckets work queue, for the operator.

    Same constructor keywords, methods, retries and errors as ``Buckets``, plus
    ``max_concurrent`` (see ``MAX_CONCURRENT_REQUESTS``); every method is a
    coroutine. Close it with ``await aclose()`` or ``async with``.
    """

    _client: httpx.AsyncClient

    def __init__(self, *, max_concurrent: int = MAX_CONCURRENT_REQUESTS, **settings: Any) -> None:
        """The keywords of ``Buckets`` (with an async ``transport``) and ``max_concurrent``.

        They are passed on rather than repeated, so that both clients keep the
        same settings and defaults.
        """
        self._max_concurrent = max_concurrent
        super().__init__(**settings)
        self._slots = asyncio.Semaphore(max_concurrent)

    def _open(self, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=self._max_concurrent, max_keepalive_connections=self._max_concurrent
        )
        return httpx.AsyncClient(transport=transport, limits=limits, **self._options())

    # ------------------------------------------------------------------ plumbing
    async def _run(self, operation: Operation[T]) -> T:
        return await self._drive(self._steps(operation))

    async def _drive(self, steps: Steps[T]) -> T:
        """Carry out ``steps``, awaiting each send and sleep; their result."""
        result: StepResult = None
        while not isinstance(step := advance(steps, result), Finished):
            result = await self._carry_out(step)
        return step.value

    async def _carry_out(self, step: Step) -> StepResult:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        async with self._slots:  # see MAX_CONCURRENT_REQUESTS
            try:
                return await self._client.send(step.request, auth=step.auth)
            except httpx.RequestError as error:
                return error

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()

    async def __aenter__(self) -> AsyncBuckets:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ API
    async def ping(self, timeout: float = PING_TIMEOUT) -> None:
        """See ``Buckets.ping``."""
        await self._drive(self._ping_steps(timeout))

    async def deposit(
        self, works: Sequence[Work], return_ids: bool = False, *, owner: str | None = None
    ) -> bool | list[str]:
        """See ``Buckets.deposit``."""
        return await self._run(operations.deposit(works, return_ids, owner))

    async def withdraw(
        self,
        pipeline: str | Iterable[str],
        event: Iterable[int] | None = None,
        site: str | None = None,
        priority: int | None = None,
        user: str | None = None,
        tags: Iterable[str] | None = None,
        parent: str | Iterable[str] | None = None,
    ) -> dict[str, Any] | None:
        """See ``Buckets.withdraw``; never retried."""
        query = operations.withdraw_filter(pipeline, event, site, priority, user, tags, parent)
        return await self._run(operations.withdraw(query))

    async def update(self, works: Sequence[Work], *, guarded: bool = False) -> bool:
        """See ``Buckets.update``."""
        return await self._run(operations.update(works, guarded))

    async def get(self, work_id: str) -> dict[str, Any]:
        """See ``Buckets.get``."""
        return await self._run(operations.get(work_id))

    async def delete_ids(self, ids: Iterable[str]) -> bool:
        """See ``Buckets.delete_ids``."""
        return await self._run(operations.delete_ids(ids))

    async def delete_many(
        self,
        pipeline: str,
        status: str | None = None,
        events: Iterable[int] | None = None,
        tags: Iterable[str] | None = None,
        parent: str | None = None,
        force: bool = False,
        limit: int | None = 100,
    ) -> bool:
        """See ``Buckets.delete_many``."""
        return await self._run(
            operations.delete_many(pipeline, status, events, tags, parent, force, limit)
        )

    async def view(
        self,
        query: Mapping[str, Any],
        projection: Mapping[str, Any] | None = None,
        skip: int = 0,
        limit: int | None = 100,
    ) -> list[dict[str, Any]]:
        """See ``Buckets.view``."""
        return await self._run(operations.view(query, projection, skip, limit))

    async def status(self, pipeline: str | None = None) -> dict[str, Any]:
        """See ``Buckets.status``."""
        return await self._run(operations.status(pipeline))

    async def pipelines(self) -> list[str]:
        """See ``Buckets.pipelines``."""
        return await self._run(operations.pipelines())

    async def audit(self) -> dict[str, Any]:
        """See ``Buckets.audit``."""
        return await self._run(operations.audit())

    async def info(self) -> dict[str, Any]:
        """See ``Buckets.info``."""
        return {"client": self._client_info(), "server": await self._run(operations.version())}
