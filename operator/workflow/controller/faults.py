"""Crash points, so reliability tests can kill the operator at an exact step.

Set ``WORKFLOW_OPERATOR_CRASH_AT=<point>`` (or ``<point>:<n>`` for the n-th
time the point is reached) and the operator SIGKILLs itself there, as an OOM
kill or a node failure would: no cleanup, no final writes. Unset (always, in
production) a crash point costs one dictionary lookup.

Points: ``before-deposit``, ``after-deposit``, ``after-job-create``,
``after-sync``, ``before-result-write`` (buckets holds the final outcome, the
Work's status does not yet), ``after-status-write``.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "before-deposit",
    "after-deposit",
    "after-job-create",
    "after-sync",
    "before-result-write",
    "after-status-write",
)


def _parse(value: str) -> tuple[str, int] | None:
    if not value:
        return None
    point, _, count = value.partition(":")
    if point not in POINTS:
        raise ValueError(
            f"WORKFLOW_OPERATOR_CRASH_AT: unknown crash point {point!r}; known: {POINTS}"
        )
    return point, int(count or 1)


_TARGET = _parse(os.environ.get("WORKFLOW_OPERATOR_CRASH_AT", ""))
_reached: dict[str, int] = {}


def crash_point(point: str) -> None:
    """SIGKILL this process if the tests asked to crash at ``point`` (its n-th passage)."""
    if _TARGET is None or _TARGET[0] != point:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] == _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)
