"""Who may call which route: the token checks the routes declare as dependencies.

With tokens configured, each route depends on a guard for its scope; the guard
keeps the token's grant on ``request.state`` for the route's own, finer checks
(``tenancy``). Without tokens there are no guards, and the OpenAPI document
shows no security schemes and no 401/403 replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer

from workflow.buckets import tenancy
from workflow.buckets.auth import Authenticator, Grant, Refused, Scope, presented_token


@dataclass(frozen=True)
class Guards:
    """The dependencies of each kind of route, and the error replies they add."""

    #: Read or write the works of the token's pipelines.
    read: list[Any]
    write: list[Any]
    #: The same, also open to a work token (limited to its own record by the route).
    read_record: list[Any]
    write_record: list[Any]
    #: Act on every pipeline: refused to tokens limited to some.
    read_all: list[Any]
    write_all: list[Any]
    #: 401 and 403 when tokens are configured, else nothing.
    auth_errors: tuple[int, ...]

    @classmethod
    def of(cls, authenticator: Authenticator) -> Guards:
        """The guards enforcing ``authenticator``'s tokens (none when it has none)."""
        return cls(
            read=_guard(authenticator, "read"),
            write=_guard(authenticator, "write"),
            read_record=_guard(authenticator, "read", work_tokens=True),
            write_record=_guard(authenticator, "write", work_tokens=True),
            read_all=_guard(authenticator, "read", every_pipeline=True),
            write_all=_guard(authenticator, "write", every_pipeline=True),
            auth_errors=(401, 403) if authenticator.enabled else (),
        )


def grant_of(request: Request) -> Grant | None:
    """What the request's token may touch; None when tokens are not configured."""
    return getattr(request.state, "grant", None)


def _guard(
    authenticator: Authenticator,
    scope: Scope,
    *,
    work_tokens: bool = False,
    every_pipeline: bool = False,
) -> list[Any]:
    """Route dependencies enforcing ``scope`` when tokens are configured (none otherwise).

    The grant is kept on ``request.state`` for the route's own checks
    (``tenancy``). Work tokens are refused unless the route takes them
    (``work_tokens``: it limits them to their record itself); routes that act
    on ``every_pipeline`` refuse tokens limited to some.
    """
    if not authenticator.enabled:
        return []
    header = APIKeyHeader(
        name="x-access-token",
        auto_error=False,
        description="The token, as the public client sends it.",
    )
    bearer = HTTPBearer(auto_error=False, description="The token as a bearer token.")

    # Defaults rather than Annotated: the annotations are strings here (postponed
    # evaluation) and could not name these local schemes.
    async def check(
        request: Request,
        _header: str | None = Security(header),
        _bearer: Any = Security(bearer),  # noqa: B008
    ) -> None:
        presented = presented_token(request.headers)
        if presented is None:
            raise HTTPException(
                401,
                "missing access token: send it as 'x-access-token: <token>' "
                "or 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            grant = authenticator.grant(presented)
        except Refused as refusal:
            raise HTTPException(403, str(refusal)) from None
        route = f"{request.method} {request.url.path}"
        if grant.record is not None and not work_tokens:
            raise HTTPException(403, f"{tenancy.RECORD_ONLY}, not {route}")
        if grant.pipelines is not None and every_pipeline:
            raise HTTPException(
                403,
                f"{grant.name} is limited to pipelines {', '.join(sorted(grant.pipelines))}; "
                f"{route} acts on every pipeline",
            )
        if scope not in grant.scopes:
            raise HTTPException(403, f"{grant.name} lacks the {scope!r} scope that {route} needs")
        request.state.grant = grant

    return [Depends(check)]
