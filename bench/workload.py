"""The works the buckets benchmarks deposit and withdraw: about 1 KB each, spread evenly.

Works are spread round-robin over pipelines ``bench-0`` … ``bench-{n-1}``
and priorities 1-5, with increasing ``creation`` times. ``stored`` turns
them into the documents a store holds (validated, with id and status), so
that queues can be filled through the store's own code, quickly, without
HTTP.
"""

from __future__ import annotations

import json
import time
from typing import Any

#: Size the JSON of one deposited work aims at, in bytes.
PAYLOAD_BYTES = 1024
PIPELINES = 10
PRIORITIES = 5


def pipeline_names(count: int = PIPELINES) -> list[str]:
    return [f"bench-{number}" for number in range(count)]


def _padding() -> str:
    probe = _work(0, "bench-0", 3, 0.0, "")
    size = len(json.dumps(_complete(probe), separators=(",", ":")))
    return "x" * max(0, PAYLOAD_BYTES - size)


def _work(number: int, pipeline: str, priority: int, creation: float, blob: str) -> dict[str, Any]:
    return {
        "pipeline": pipeline,
        "site": "local",
        "user": "bench",
        "command": ["true"],
        "parameters": {"number": number, "blob": blob},
        "tags": ["bench"],
        "priority": priority,
        "creation": creation,
    }


def _complete(work: dict[str, Any]) -> dict[str, Any]:
    from workflow.buckets.documents import validate_works

    return validate_works([work], for_update=False)[0]


def documents(
    count: int, *, pipelines: int = PIPELINES, start: float | None = None
) -> list[dict[str, Any]]:
    """``count`` works as the public client deposits them: every field, no id, ~1 KB of JSON."""
    names = pipeline_names(pipelines)
    base = time.time() if start is None else start
    template = _complete(_work(0, names[0], 3, base, _padding()))
    works = []
    for number in range(count):
        work = {**template, "parameters": {**template["parameters"], "number": number}}
        work["pipeline"] = names[number % pipelines]
        work["priority"] = 1 + number % PRIORITIES
        work["creation"] = base + number * 1e-4
        works.append(work)
    return works


def stored(works: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents a store keeps for ``works``: each with a new id, queued."""
    from workflow.buckets.documents import prepare_deposit

    documents = [dict(work) for work in works]
    prepare_deposit(documents)
    return documents


def body(works: list[dict[str, Any]]) -> bytes:
    return json.dumps(works, separators=(",", ":")).encode()
