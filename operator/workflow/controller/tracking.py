"""What the controller keeps of a Work between two looks at it, and when to look.

Thousands of Works may wait at once (for a retry a day away, or for their
``ttlSecondsAfterFinished``), so the record is small: names, the spec as
the watch last delivered it and the status as last written, both kept as
JSON bytes rather than as nested objects (about a tenth of the memory), and
the few counters the next look needs. A finished Work the controller has
let go of leaves only a tombstone (its generation) for a few minutes, so
that watch events delivered late, from before its final write, are not
mistaken for a Work to start again.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from workflow.controller import conditions as cond
from workflow.controller import resource
from workflow.controller.resource import FINAL_PHASES, WorkStatus

FINALIZER = f"{resource.GROUP}/finalizer"


def needs_looking(body: dict[str, Any]) -> bool:
    """Whether a Work needs the controller: unfinished, unsynced, re-run, expiring or held."""
    meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    held = FINALIZER in (meta.get("finalizers") or [])
    if meta.get("deletionTimestamp"):
        return held
    if status.get("phase") not in FINAL_PHASES or status.get("runId") != spec.get("runId"):
        return True
    if spec.get("ttlSecondsAfterFinished") is not None or held:
        return True
    synced = [c for c in status.get("conditions") or [] if c.get("type") == cond.BACKEND_SYNCED]
    return not synced or synced[0].get("status") != "True"


@dataclass(slots=True)
class Tracked:
    """One Work the controller is responsible for right now."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    version: str
    spec: bytes
    status: bytes
    finalizers: tuple[str, ...]
    deleting: bool
    #: Attempts whose Job this process created and the watch may not show yet.
    created: dict[int, float] = field(default_factory=dict)
    #: Consecutive failed buckets calls (for their backoff) and failed looks (for theirs).
    sync_failures: int = 0
    errors: int = 0

    @classmethod
    def of(cls, body: dict[str, Any]) -> Tracked:
        """Start tracking a Work as the watch shows it, status included."""
        meta = body["metadata"]
        status = WorkStatus.model_validate(body.get("status") or {})
        tracked = cls(
            namespace=meta["namespace"], name=meta["name"], uid=meta["uid"], generation=None,
            version="", spec=b"", status=status.model_dump_json().encode(), finalizers=(),
            deleting=False,
        )  # fmt: skip
        tracked.refresh(body)
        return tracked

    def refresh(self, body: dict[str, Any]) -> None:
        """Take the spec and metadata of a newer event; the status stays the one last written."""
        meta = body["metadata"]
        self.saw_write(meta)
        self.spec = json.dumps(body.get("spec") or {}, separators=(",", ":")).encode()
        self.finalizers = tuple(meta.get("finalizers") or ())
        self.deleting = bool(meta.get("deletionTimestamp"))

    def saw_write(self, meta: dict[str, Any]) -> None:
        """Note the generation and version of the Work (from an event or a write's answer)."""
        generation = meta.get("generation")
        if generation is not None:
            self.generation = max(generation, self.generation or 0)
        self.version = meta.get("resourceVersion", self.version)

    @property
    def finalized(self) -> bool:
        """Whether the Work carries this operator's finalizer."""
        return FINALIZER in self.finalizers

    def reference(self) -> dict[str, Any]:
        """The Work as an Event's involved object."""
        return {
            "apiVersion": resource.API_VERSION,
            "kind": resource.KIND,
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
        }


class Tombstones:
    """Generations of Works recently let go of, forgotten after ``keep`` seconds."""

    def __init__(self, keep: float = 300.0) -> None:
        self.keep = keep
        self._items: OrderedDict[str, tuple[int | None, float]] = OrderedDict()

    def bury(self, uid: str, generation: int | None) -> None:
        self._items.pop(uid, None)
        self._items[uid] = (generation, time.monotonic())
        self._expire()

    def covers(self, uid: str, generation: int | None) -> bool:
        """Whether the Work was let go of at exactly this generation (and not long ago).

        An event of that generation is an echo of the controller's own last writes;
        any other generation (a newer spec) is news, and so is an unknown Work.
        """
        self._expire()
        entry = self._items.get(uid)
        return entry is not None and entry[0] == generation

    def remove(self, uid: str) -> None:
        self._items.pop(uid, None)

    def _expire(self) -> None:
        horizon = time.monotonic() - self.keep
        while self._items:
            uid, (_, when) = next(iter(self._items.items()))
            if when > horizon:
                break
            del self._items[uid]
