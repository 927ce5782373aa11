"""What the operator needs to know of a Job or a Pod, read from its body (pure).

The kopf indices keep only these small summaries in memory, not whole
objects, so watching thousands of Jobs costs little.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workflow.controller import resource

#: Container waiting reasons that mean the pod will not start by itself.
STUCK_REASONS = {
    "ErrImagePull": "ImagePullFailed",
    "ImagePullBackOff": "ImagePullFailed",
    "InvalidImageName": "ImagePullFailed",
    "ErrImageNeverPull": "ImagePullFailed",
    "CreateContainerConfigError": "ContainerConfigError",
    "CreateContainerError": "ContainerConfigError",
    "RunContainerError": "ContainerConfigError",
}


def parse_time(value: str | None) -> float | None:
    """An RFC 3339 timestamp as Unix time."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class JobView:
    """The state of one attempt's Job."""

    name: str
    attempt: int
    run_id: str | None
    active: int
    succeeded: int
    failed: int
    finished: str | None  # "Complete" or "Failed", once the Job controller says so
    reason: str | None
    message: str | None
    start: float | None
    completion: float | None
    created: float | None
    deleting: bool


@dataclass(frozen=True)
class PodView:
    """The state of one attempt's Pod (its single container)."""

    name: str
    attempt: int
    phase: str
    reason: str | None
    start: float | None
    created: float | None
    waiting_reason: str | None
    waiting_message: str | None
    unschedulable: str | None
    running_since: float | None
    exit_code: int | None
    terminated_reason: str | None
    termination_message: str | None
    started: float | None
    finished: float | None
    #: Deletion has begun (``metadata.deletionTimestamp`` is set).
    deleting: bool = False

    def summary(self) -> dict[str, Any] | None:
        """The runner's JSON summary from the termination message, if it wrote one."""
        if not self.termination_message:
            return None
        try:
            data = json.loads(self.termination_message)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


def _attempt(meta: dict[str, Any]) -> int:
    try:
        return int((meta.get("labels") or {}).get(resource.ATTEMPT_LABEL, "0"))
    except ValueError:
        return 0


def view_job(body: dict[str, Any]) -> JobView:
    """Summarise a Job."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    finished = reason = message = None
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            finished = condition["type"]
            reason, message = condition.get("reason"), condition.get("message")
    return JobView(
        name=meta.get("name", ""),
        attempt=_attempt(meta),
        run_id=(meta.get("annotations") or {}).get(resource.RUN_ANNOTATION),
        active=status.get("active") or 0,
        succeeded=status.get("succeeded") or 0,
        failed=status.get("failed") or 0,
        finished=finished,
        reason=reason,
        message=message,
        start=parse_time(status.get("startTime")),
        completion=parse_time(status.get("completionTime")),
        created=parse_time(meta.get("creationTimestamp")),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def view_pod(body: dict[str, Any]) -> PodView:
    """Summarise a Pod of a Work's Job (its first container is the Work's)."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    containers = status.get("containerStatuses") or []
    state = (containers[0].get("state") or {}) if containers else {}
    waiting, running, terminated = (
        state.get("waiting") or {},
        state.get("running") or {},
        state.get("terminated") or {},
    )
    unschedulable = None
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
            unschedulable = condition.get("message") or "no node can run the pod"
    return PodView(
        name=meta.get("name", ""),
        attempt=_attempt(meta),
        phase=status.get("phase") or "Pending",
        reason=status.get("reason"),
        start=parse_time(status.get("startTime")),
        created=parse_time(meta.get("creationTimestamp")),
        waiting_reason=waiting.get("reason"),
        waiting_message=waiting.get("message"),
        unschedulable=unschedulable,
        running_since=parse_time(running.get("startedAt")),
        exit_code=terminated.get("exitCode"),
        terminated_reason=terminated.get("reason"),
        termination_message=terminated.get("message"),
        started=parse_time(terminated.get("startedAt")),
        finished=parse_time(terminated.get("finishedAt")),
        deleting=bool(meta.get("deletionTimestamp")),
    )
