"""The store interface: what the HTTP layer asks of a database, and the shared layout.

Both stores keep the same two tables:

``works``
    One row per work: ``id`` (primary key), the columns filters and counts
    use most (``pipeline``, ``status``, ``priority``, ``creation``, ``site``,
    ``user``), the whole document as JSON, and ``owner``. The document is the
    truth; the columns are copies kept in step by every write. ``owner`` is
    not part of the document: it is NULL for ordinary works and names the
    manager of a *managed* work (deposited with ``?owner=``, e.g. by the
    Kubernetes operator, which runs the work itself). It is set once, by the
    deposit that creates the work; updates never change it.

``queue``
    One narrow row per *queued* work: ``id``, ``pipeline``, ``priority``,
    ``creation``, ``site``, ``user``, with an index in claim order
    (pipeline, priority descending, creation, id). A withdraw deletes its row
    from here and marks the work running in the same transaction. The table
    only ever holds waiting works, so it stays small, its dead rows are
    vacuumed quickly, and a claim never walks past works that are already
    running or finished.

Guarded updates (``update(..., guarded=True)``, ``PUT /work?guard=attempt``)
are refused, whole, when a stored work is further along than the document
meant to replace it (``progress``): a later attempt, or the same attempt
already ended when the document only starts it. The check and the write
happen in one transaction holding the works' rows, so a start record that
arrives late can never overwrite the outcome of its attempt, nor an old
attempt the record of a newer one.

Invariant: a work has a ``queue`` row exactly when its status is ``queued``
and it has no owner. A managed work is therefore never claimed by a withdraw,
whatever its status, and the audits (re-queue failed, expire running) leave
it alone: its owner runs its retries and timeouts, and a worker claiming it
too would run it twice. Every statement that enqueues, re-queues or expires
works checks ``owner IS NULL``; the claim path needs no check, because a
managed work never reaches the queue.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

from workflow.buckets.queries import Column, Projection

#: Claims one work for a prepared filter: its JSON text, or None (see ``Store.prepare_withdraw``).
Claimer = Callable[[], Awaitable[str | None]]

#: Status counts in the order replies list them.
COUNT_KEYS = ("total", "queued", "running", "success", "failure")

#: Columns of ``works`` that filters may use instead of the document.
WORK_COLUMNS: Mapping[str, Column] = {
    "id": Column("id", "text"),
    "pipeline": Column("pipeline", "text"),
    "status": Column("status", "text"),
    "priority": Column("priority", "number"),
    "creation": Column("creation", "number"),
    "site": Column("site", "text"),
    "user": Column('"user"', "text"),
}

#: Columns of ``queue`` (aliased ``q``) that withdraw filters may use without the document.
QUEUE_COLUMNS: Mapping[str, Column] = {
    "id": Column("q.id", "text"),
    "pipeline": Column("q.pipeline", "text"),
    "priority": Column("q.priority", "number"),
    "creation": Column("q.creation", "number"),
    "site": Column("q.site", "text"),
    "user": Column('q."user"', "text"),
}


#: Most pipelines a claim probes one by one (see ``split_pipelines``).
MAX_PROBED_PIPELINES = 64


def split_pipelines(query: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]] | None:
    """For ``{"pipeline": {"$in": [a, b, …]}, …}``: the pipelines and the rest of the filter.

    An index in claim order serves one pipeline at a time: with several,
    a database would collect and sort every queued work of all of them. A
    store instead takes the best candidate of each pipeline from the index
    and then the best of those. Returns None when the filter has another shape
    (one pipeline, or anything a plain translation serves as well).
    """
    condition = query.get("pipeline")
    if not isinstance(condition, dict) or list(condition) != ["$in"]:
        return None
    names = condition["$in"]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        return None
    unique = sorted(set(names))
    if not 2 <= len(unique) <= MAX_PROBED_PIPELINES:
        return None
    return unique, {key: value for key, value in query.items() if key != "pipeline"}


class UnknownWorksError(LookupError):
    """An update named works that do not exist; nothing was written."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)
        shown = ", ".join(repr(work_id) for work_id in self.ids[:10])
        more = f" and {len(self.ids) - 10} more" if len(self.ids) > 10 else ""
        noun = "work" if len(self.ids) == 1 else "works"
        super().__init__(f"{noun} {shown}{more} does not exist; nothing was updated")


#: Stages of an attempt, in order (see ``progress``).
STAGES = ("waiting", "running", "ended")


def progress(attempt: Any, status: Any, stop: Any) -> tuple[int, int]:
    """How far a work's record is: (attempt, stage), compared as a tuple.

    The stage is ``ended`` (2) once the attempt has a ``stop`` time or a final
    status, ``running`` (1) while it runs, else ``waiting`` (0). Every write
    that ends an attempt sets ``stop`` (the runner's outcome, the operator's
    record of a failed attempt that is retried later, a deleted Work), so a
    re-queued work keeps the progress of the attempt that ended.
    """
    number = attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else 0
    if stop is not None or status in ("success", "failure"):
        return number, 2
    return number, 1 if status == "running" else 0


def describe_progress(step: tuple[int, int]) -> str:
    """``attempt 2 running``."""
    return f"attempt {step[0]} {STAGES[step[1]]}"


class StaleWorksError(Exception):
    """A guarded update would have written over newer records; nothing was written."""

    def __init__(self, stale: Sequence[tuple[str, tuple[int, int], tuple[int, int]]]) -> None:
        self.ids = [work_id for work_id, _, _ in stale]
        described = "; ".join(
            f"work {work_id!r} holds {describe_progress(stored)}, newer than the "
            f"{describe_progress(sent)} sent"
            for work_id, stored, sent in stale[:10]
        )
        more = f" and {len(stale) - 10} more" if len(stale) > 10 else ""
        super().__init__(
            f"attempt: {described}{more}; a guarded update (guard=attempt) never writes an "
            "older attempt, or the start of an attempt that ended, over a newer record; "
            "nothing was updated"
        )


def stale_works(
    documents: Mapping[str, Mapping[str, Any]], stored: Mapping[str, tuple[int, int]]
) -> list[tuple[str, tuple[int, int], tuple[int, int]]]:
    """The works whose ``stored`` progress is beyond that of the document sent for them."""
    stale = []
    for work_id, document in documents.items():
        sent = progress(document.get("attempt"), document.get("status"), document.get("stop"))
        if work_id in stored and stored[work_id] > sent:
            stale.append((work_id, stored[work_id], sent))
    return stale


def dump(document: Mapping[str, Any]) -> str:
    """Compact JSON text of a document, as stored."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def row_of(document: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ``works`` row of a validated document: its columns, then its JSON text."""
    return (
        document["id"],
        document["pipeline"],
        document["status"],
        document["priority"],
        document["creation"],
        document["site"],
        document["user"],
        dump(document),
    )


def counts_of(rows: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Status counts keyed total, queued, running, success, failure (in that order)."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    for status, count in rows:
        counts["total"] += count
        if status in counts:
            counts[status] += count
    return counts


class Store(ABC):
    """Where works live. Every method is atomic; failures leave nothing half done."""

    #: "sqlite" or "postgres".
    kind: ClassVar[str]

    @abstractmethod
    async def open(self) -> None:
        """Connect and create the tables if they are missing."""

    @abstractmethod
    async def close(self) -> None:
        """Release every connection."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""

    @abstractmethod
    async def deposit(
        self, documents: Sequence[Mapping[str, Any]], owner: str | None = None
    ) -> None:
        """Insert the documents (each with id and status set) in one transaction.

        Without ``owner`` the works are queued (their status is ``queued``).
        With ``owner`` they are managed by it: stored with the status they
        carry and never queued. A document whose id already exists is
        skipped: the stored work, its owner included, is unchanged.
        """

    async def withdraw(self, query: Mapping[str, Any]) -> str | None:
        """Claim the most urgent queued work matching ``query``, or return None.

        Highest priority first, then oldest creation, then id. The claimed
        work becomes ``running`` with ``start`` = now and ``attempt`` + 1; its
        JSON text is returned. Concurrent claims never return the same work.
        """
        return await self.prepare_withdraw(query)()

    @abstractmethod
    def prepare_withdraw(self, query: Mapping[str, Any]) -> Claimer:
        """Translate ``query`` once into a claimer that runs ``withdraw`` for it.

        Workers send the same filter over and over; a caller that keeps the
        claimer of a filter skips translating it again on every claim. The
        claimer holds no state of its own between calls and may be called
        any number of times, concurrently. Raises ``QueryError`` for a filter
        the store cannot run.
        """

    @abstractmethod
    async def update(
        self, documents: Sequence[Mapping[str, Any]], *, guarded: bool = False
    ) -> None:
        """Replace stored works by id in one transaction.

        A work's owner is kept: a managed work stays managed and out of the
        queue whatever its new status. Raises ``UnknownWorksError`` (and
        writes nothing) if any id is unknown. With ``guarded``, raises
        ``StaleWorksError`` (and writes nothing) if any stored work is further
        along than its document (see ``progress``).
        """

    @abstractmethod
    async def delete(self, ids: Sequence[str]) -> int:
        """Delete works by id; return how many existed."""

    @abstractmethod
    async def get(self, work_id: str) -> str | None:
        """The JSON text of one work, or None."""

    @abstractmethod
    async def view(
        self,
        query: Mapping[str, Any],
        projection: Projection | None,
        skip: int,
        limit: int | None,
    ) -> list[dict[str, Any]]:
        """Works matching ``query`` ordered by (creation, id), projected and paged."""

    @abstractmethod
    async def counts(self, pipeline: str | None = None) -> dict[str, int]:
        """Status counts of one pipeline, or of all works (see ``counts_of``)."""

    @abstractmethod
    async def pipelines(self) -> list[str]:
        """The distinct pipelines that hold works, sorted."""

    @abstractmethod
    async def requeue_failed(self) -> int:
        """Re-queue failed works that have attempts left (attempt < 1 + retries).

        Managed works are skipped: their owner decides about retries.
        """

    @abstractmethod
    async def expire_running(self, now: float) -> int:
        """Mark running works whose start + timeout is before ``now`` as failed.

        Managed works are skipped: their owner enforces their timeout.
        """

    @abstractmethod
    async def count_created_before(self, moment: float) -> int:
        """How many works were created before ``moment`` (Unix time)."""
