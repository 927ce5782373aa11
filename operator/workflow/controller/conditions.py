"""Kubernetes-style conditions: set one, keep the others, move the time only on change."""

from __future__ import annotations

from datetime import UTC, datetime

from workflow.controller.resource import Condition, ConditionStatus

SUCCEEDED = "Succeeded"
BACKEND_SYNCED = "BackendSynced"


def now_rfc3339(now: float) -> str:
    """A Unix time as the RFC 3339 string Kubernetes uses."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    now: float,
    generation: int | None,
) -> list[Condition]:
    """``conditions`` with ``type_`` set; its transition time moves only when its status does."""
    previous = next((c for c in conditions if c.type == type_), None)
    moved = previous is None or previous.status != status
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        lastTransitionTime=now_rfc3339(now) if moved else previous.lastTransitionTime,  # type: ignore[union-attr]
        observedGeneration=generation,
    )
    return [c for c in conditions if c.type != type_] + [updated]


def get_condition(conditions: list[Condition], type_: str) -> Condition | None:
    """The condition of ``type_``, if present."""
    return next((c for c in conditions if c.type == type_), None)
