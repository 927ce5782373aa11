"""A scripted stand-in for buckets on ``httpx.MockTransport``, for the client's unit tests.

Each request is recorded; replies are taken in order from a script (a
response, an exception to raise, or a function of the request), and once the
script is used up the ``default`` reply is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def answer(status: int = 200, body: Any = True, **headers: str) -> httpx.Response:
    """A JSON reply."""
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class Script:
    replies: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=answer)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else self.default
        if isinstance(reply, Exception):
            raise reply
        if callable(reply) and not isinstance(reply, httpx.Response):
            return reply(request)
        return reply

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]
