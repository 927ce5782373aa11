"""Works as buckets stores them: validated, completed and given an id.

Every deposit and update is validated with ``WorkDocument``, the one model
of a stored work, before anything is written. Its nested ``config``,
``config.archive`` and ``notify.slack`` models are settings classes: built
from a mapping, they would still fill missing fields from the *server's*
``WORKFLOW_CONFIG_*`` / ``WORKFLOW_NOTIFY_SLACK_*`` environment and
``/run/secrets``, and building those sources costs about 2 ms per work.
``without_environment`` derives twins of these models (subclasses with the
same fields and validators) that validate like plain pydantic models, so a
stored work depends only on what was sent, and validation is fast.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

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


def _reads_environment(annotation: Any) -> bool:
    """Whether validating ``annotation`` would build a settings model somewhere inside."""
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return False
    if issubclass(annotation, BaseSettings):
        return True
    return any(_reads_environment(info.annotation) for info in annotation.model_fields.values())


@cache
def without_environment(model: type[M]) -> type[M]:
    """A subclass of ``model`` whose (nested) settings models ignore the environment.

    Fields, defaults and validators are inherited; nested settings models are
    replaced by their own twins, and settings models validate through
    ``BaseModel.__init__`` instead of gathering environment and secret sources.
    """
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {
        "__module__": model.__module__,
        "__qualname__": model.__qualname__,
        "__doc__": model.__doc__,
        "__annotations__": annotations,
    }
    for name, info in model.model_fields.items():
        if _reads_environment(info.annotation):
            twin = without_environment(info.annotation)  # type: ignore[arg-type]
            annotations[name] = twin
            changes: dict[str, Any] = {"annotation": twin}
            if info.default_factory is not None:
                changes["default_factory"] = twin
            namespace[name] = FieldInfo.merge_field_infos(info, **changes)
    if issubclass(model, BaseSettings):
        namespace["__init__"] = BaseModel.__init__
    return cast(type[M], type(model.__name__, (model,), namespace))


#: The model deposits and updates are validated with.
StoredWork = without_environment(WorkDocument)


def _location(prefix: str, loc: Sequence[Any]) -> str:
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def validation_messages(prefix: str, error: ValidationError) -> list[str]:
    """One "where: what" sentence per problem in a pydantic ``ValidationError``."""
    return [f"{_location(prefix, item['loc'])}: {item['msg']}" for item in error.errors()]


def summarize(messages: list[str]) -> str:
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
            work = StoredWork.model_validate(item)
        except ValidationError as error:
            problems.extend(validation_messages(where, error))
            continue
        if work.id is None and for_update:
            problems.append(f"{where}.id: is required to update a work")
        elif work.id is not None and not 1 <= len(work.id) <= MAX_ID_LENGTH:
            problems.append(f"{where}.id: must be 1 to {MAX_ID_LENGTH} characters long")
        documents.append(work.model_dump(mode="json"))
    if problems:
        raise BodyError(summarize(problems))
    return documents


def prepare_deposit(documents: list[dict[str, Any]]) -> list[str]:
    """Give each new work an id and the status ``queued``; return the ids in order.

    A work that already carries an id keeps it (the operator records works
    under ids it chose); depositing an id that exists is a no-op for that work.
    """
    ids = []
    for document in documents:
        if document.get("id") is None:
            document["id"] = new_id()
        document["status"] = "queued"
        ids.append(document["id"])
    return ids
