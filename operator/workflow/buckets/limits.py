"""A cap on request body size, enforced while the body streams in.

A declared ``Content-Length`` over the cap is refused before a byte of the
body is read. Bodies without one (chunked transfer) are counted as they
arrive, and reading stops with 413 as soon as the count passes the cap, so
no request can make the server buffer more than ``max_body_bytes``.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_message(limit: int) -> str:
    return f"body: is larger than the {limit} byte limit of this server"


class BodyLimitMiddleware:
    """ASGI middleware answering 413 to bodies larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0:
                    response = JSONResponse(
                        {"detail": "Content-Length: must be a non-negative integer"}, 400
                    )
                    await response(scope, receive, send)
                    return
                if declared > self.max_bytes:
                    response = JSONResponse({"detail": too_large_message(self.max_bytes)}, 413)
                    await response(scope, receive, send)
                    return
        received = 0
        limit = self.max_bytes

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the endpoint's body read; the exception
                    # middleware turns it into the 413 reply.
                    raise HTTPException(413, too_large_message(limit))
            return message

        await self.app(scope, counting_receive, send)
