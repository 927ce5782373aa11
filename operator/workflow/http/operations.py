"""The buckets API calls, written once for both the sync and the async client.

Each operation is a generator (an ``Operation``): it yields the ``Call``s to make, one
at a time, receives each decoded JSON reply, and returns the operation's
result. It does no I/O itself, so ``Buckets`` and ``AsyncBuckets`` only differ
in how they send a ``Call``, and the request shapes of the wire contract live
in one place.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from workflow.http.retrying import Replay

__all__ = [
    "DELETE_CHUNK",
    "Call",
    "Operation",
    "UnexpectedReply",
    "audit",
    "delete_ids",
    "delete_many",
    "deposit",
    "document",
    "get",
    "pipelines",
    "status",
    "update",
    "version",
    "view",
    "withdraw",
    "withdraw_filter",
]

T = TypeVar("T")

#: Most ids sent in one ``DELETE /work`` request.
DELETE_CHUNK = 100

#: Marks a ``Call`` without a JSON body.
NO_BODY: Any = object()


@dataclass(frozen=True)
class Call:
    """One HTTP request of the API, and how its reply is read."""

    method: str
    path: str
    replay: Replay
    params: list[tuple[str, str]] = field(default_factory=list)
    body: Any = NO_BODY
    #: Read the reply as JSON; when False the body is ignored and ``None`` is passed back.
    json_reply: bool = True
    #: Whether an empty body (or 204) is a valid reply, passed back as ``None``.
    empty_ok: bool = False


#: An operation: yields calls, receives their decoded replies, returns its result.
Operation = Generator[Call, Any, T]


def document(work: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    """The JSON document of a work, given as a mapping, a ``Work`` or a ``WorkDocument``."""
    if isinstance(work, BaseModel):
        payload = getattr(work, "payload", None)
        return dict(payload) if isinstance(payload, Mapping) else work.model_dump(mode="json")
    if isinstance(work, Mapping):
        return dict(work)
    raise TypeError(f"a work must be a mapping or a Work, not {type(work).__name__}")


def _listed(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _match_any(query: dict[str, Any], key: str, values: list[Any]) -> None:
    """Add ``key: {"$in": values}`` to ``query``; no values means no filter, not "match none"."""
    if values:
        query[key] = {"$in": values}


def _expect(reply: Any, kind: type[T], what: str) -> T:
    if not isinstance(reply, kind):
        raise UnexpectedReply(f"expected {what}, got {type(reply).__name__} {_short(reply)}")
    return reply


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


class UnexpectedReply(Exception):
    """A reply does not have the shape the API promises; the client names the call."""


# --------------------------------------------------------------------------- works
def deposit(
    works: Sequence[Mapping[str, Any] | BaseModel], return_ids: bool, owner: str | None = None
) -> Operation[bool | list[str]]:
    documents = [document(work) for work in works]
    if not documents:
        return [] if return_ids else True
    # A deposit whose works all carry an id is idempotent on our server: sending
    # it twice stores each work once. Without ids a second send stores copies.
    replay = Replay.ALWAYS if all(doc.get("id") for doc in documents) else Replay.UNSENT
    reply = yield Call(
        "POST",
        "/work",
        replay,
        # The contract's spelling: Python's True/False.
        params=[("return_ids", str(bool(return_ids)))] + ([("owner", owner)] if owner else []),
        body=documents,
        json_reply=return_ids,
    )
    if not return_ids:
        return True
    ids = _expect(reply, list, f"a list of {len(documents)} ids")
    if len(ids) != len(documents) or not all(isinstance(i, str) for i in ids):
        raise UnexpectedReply(f"expected a list of {len(documents)} string ids, got {_short(ids)}")
    return ids


def withdraw_filter(
    pipeline: str | Iterable[str],
    event: Iterable[int] | None = None,
    site: str | None = None,
    priority: int | None = None,
    user: str | None = None,
    tags: Iterable[str] | None = None,
    parent: str | Iterable[str] | None = None,
) -> dict[str, Any]:
    """The filter document of ``POST /work/withdraw``; only given filters appear."""
    pipelines = _listed(pipeline)
    if not pipelines:
        raise ValueError("withdraw needs at least one pipeline")
    query: dict[str, Any] = {"pipeline": {"$in": pipelines}}
    if site:
        query["site"] = site
    if priority:
        query["priority"] = priority
    if user:
        query["user"] = user
    _match_any(query, "event", list(event or []))
    _match_any(query, "tags", _listed(tags))
    _match_any(query, "config.parent", _listed(parent))
    return query


def withdraw(query: dict[str, Any]) -> Operation[dict[str, Any] | None]:
    reply = yield Call("POST", "/work/withdraw", Replay.NEVER, body=query, empty_ok=True)
    if not reply:
        return None
    return _expect(reply, dict, "a work object or null")


def update(
    works: Sequence[Mapping[str, Any] | BaseModel], guarded: bool = False
) -> Operation[bool]:
    documents = [document(work) for work in works]
    if not documents:
        return True
    missing = [index for index, doc in enumerate(documents) if not doc.get("id")]
    if missing:
        raise ValueError(
            f"update needs the id of every work; works at positions {missing} have none "
            "(deposit them first)"
        )
    params = [("guard", "attempt")] if guarded else []
    reply = yield Call("PUT", "/work", Replay.ALWAYS, body=documents, params=params)
    return bool(reply)


def get(work_id: str) -> Operation[dict[str, Any]]:
    if not work_id:
        raise ValueError("get needs the id of a work")
    reply = yield Call("GET", f"/work/{quote(work_id, safe='')}", Replay.ALWAYS)
    return _expect(reply, dict, "a work object")


def delete_ids(ids: Iterable[str]) -> Operation[bool]:
    id_list = [str(i) for i in ids]
    if not id_list:
        return False
    deleted = True
    for start in range(0, len(id_list), DELETE_CHUNK):
        chunk = id_list[start : start + DELETE_CHUNK]
        reply = yield Call("DELETE", "/work", Replay.ALWAYS, params=[("ids", i) for i in chunk])
        deleted = deleted and bool(reply)
    return deleted


def delete_many(
    pipeline: str,
    status: str | None,
    events: Iterable[int] | None,
    tags: Iterable[str] | None,
    parent: str | None,
    force: bool,
    limit: int | None,
) -> Operation[bool]:
    query: dict[str, Any] = {"pipeline": pipeline}
    if status:
        query["status"] = status
    _match_any(query, "event", list(events or []))
    _match_any(query, "tags", _listed(tags))
    if parent:
        query["config.parent"] = parent
    found = yield from view(query, {"id": True}, 0, limit)
    ids = [work["id"] for work in found if isinstance(work, dict) and work.get("id")]
    if not ids:
        return False
    if not force:
        raise ValueError(
            f"delete_many would delete {len(ids)} works of pipeline {pipeline!r}; "
            "pass force=True to delete them"
        )
    return (yield from delete_ids(ids))


def view(
    query: Mapping[str, Any],
    projection: Mapping[str, Any] | None,
    skip: int,
    limit: int | None,
) -> Operation[list[dict[str, Any]]]:
    body = {
        "query": dict(query),
        "projection": {**(projection or {}), "_id": False},
        "skip": skip,
        "limit": limit,
    }
    reply = yield Call("POST", "/view", Replay.ALWAYS, body=body)
    return _expect(reply, list, "a list of works")


# --------------------------------------------------------------------------- status
def status(pipeline: str | None) -> Operation[dict[str, Any]]:
    path = f"/status/details/{quote(pipeline, safe='')}" if pipeline else "/status"
    reply = yield Call("GET", path, Replay.ALWAYS)
    return _expect(reply, dict, "an object of counts")


def pipelines() -> Operation[list[str]]:
    reply = yield Call("GET", "/status/pipelines", Replay.ALWAYS)
    return _expect(reply, list, "a list of pipeline names")


#: The audit passes, in the order the API runs them.
AUDITS = (("failed", "/audit/failed"), ("expired", "/audit/expired"), ("stale", "/audit/stale/7.0"))


def audit() -> Operation[dict[str, Any]]:
    counts: dict[str, Any] = {}
    for name, path in AUDITS:
        counts[name] = yield Call("GET", path, Replay.ALWAYS)
    return counts


def version() -> Operation[Any]:
    reply = yield Call("GET", "/version", Replay.ALWAYS)
    return reply
