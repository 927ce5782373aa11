"""Works as buckets stores them: validated, completed and given an id.

Every deposit and update is validated with ``WorkDocument``, the one model
of a stored work, before anything is written. It is a plain model (its
nested parts too), so a stored work depends only on what was sent, never on
the server's own ``WORKFLOW_*`` environment.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from workflow.buckets.bodies import BodyError, describe
from workflow.definitions.work import WorkDocument

M = TypeVar("M", bound=BaseModel)

#: Longest id a client may choose for its work.
MAX_ID_LENGTH = 256
#: Validation problems listed in one error reply; the rest are counted.
MAX_LISTED_ERRORS = 10


def new_id() -> str:
    """A new work id: 32 hex digits, milliseconds since the epoch then 80 random bits.

    Time-ordered ids keep inserts at the right edge of the primary-key index.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def _location(prefix: str, loc: Sequence[Any]) -> str:
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def validation_messages(prefix: str, error: ValidationError) -> list[str]:
    """One "where: what" sentence per problem in a pydantic ``ValidationError``."""
    return [f"{_location(prefix, item['loc'])}: {item['msg']}" for item in error.errors()]


def join_messages(messages: list[str]) -> str:
    """Join error sentences, listing at most ``MAX_LISTED_ERRORS``."""
    shown = messages[:MAX_LISTED_ERRORS]
    more = len(messages) - len(shown)
    return "; ".join(shown) + (f"; and {more} more problems" if more else "")


def validate_works(body: Any, *, for_update: bool) -> list[dict[str, Any]]:
    """Validate a body holding an array of works and return their stored documents.

    All works are checked before any is accepted; a ``BodyError`` (422) lists
    what is wrong with which ``works[n]``. For updates every work needs its id.
    """
    if not isinstance(body, list):
        raise BodyError(f"body: must be an array of works, not {describe(body)}")
    documents: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, item in enumerate(body):
        where = f"works[{number}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object, not {describe(item)}")
            continue
        try:
            work = WorkDocument.model_validate(item)
        except ValidationError as error:
            problems.extend(validation_messages(where, error))
            continue
        if work.id is None and for_update:
            problems.append(f"{where}.id: is required to update a work")
        elif work.id is not None and not 1 <= len(work.id) <= MAX_ID_LENGTH:
            problems.append(f"{where}.id: must be 1 to {MAX_ID_LENGTH} characters long")
        documents.append(work.model_dump(mode="json"))
    if problems:
        raise BodyError(join_messages(problems))
    return documents


def prepare_deposit(documents: list[dict[str, Any]], *, managed: bool = False) -> list[str]:
    """Give each new work an id and the status ``queued``; return the ids in order.

    A work that already carries an id keeps it (the operator records works
    under ids it chose); depositing an id that exists is a no-op for that work.
    ``managed`` works (deposited with an owner, who runs them) keep the status
    they were sent with: the record mirrors the owner's state, it is not a
    request for a worker to run the work.
    """
    ids = []
    for document in documents:
        if document.get("id") is None:
            document["id"] = new_id()
        if not managed:
            document["status"] = "queued"
        ids.append(document["id"])
    return ids
