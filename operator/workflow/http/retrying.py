"""When a failed buckets request may be sent again, and how long to wait before it.

A request is replayed only when doing so cannot do anything twice:

- ``Replay.ALWAYS`` (reads, updates, deletes, audits, deposits whose works all
  carry an id): after any ``TransportError`` and after a 5xx answer.
- ``Replay.UNSENT`` (a deposit without ids): only after a ``ConnectError``,
  where nothing reached the server; once the request was sent, the server may
  have stored the works, so sending it again could store them twice.
- ``Replay.NEVER`` (withdraw): never; a lost reply may already have claimed a
  work, and a second withdraw would claim another one.

A 4xx answer is never replayed: the same request would be refused again.
Waits grow exponentially from ``initial`` up to ``maximum`` seconds, with
jitter, and the retries of one call stop when either ``retries`` is used up or
the waits would pass ``budget`` seconds in total.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from workflow.http.errors import BucketsError, ConnectError, ServerError, TransportError

__all__ = ["Backoff", "Replay", "may_replay", "wait_before_retry"]

logger = logging.getLogger("workflow.http")


class Replay(enum.Enum):
    """When a request may be sent again after it failed."""

    ALWAYS = "always"
    UNSENT = "unsent"
    NEVER = "never"


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """How often, and after how long a wait, a failed request is sent again."""

    #: Attempts after the first one (0 turns retries off).
    retries: int = 3
    #: Seconds before the first retry; each later wait doubles, up to ``maximum``.
    initial: float = 0.25
    #: Longest single wait, in seconds.
    maximum: float = 8.0
    #: Most seconds spent waiting across all retries of one call.
    budget: float = 30.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, not {self.retries}")
        if not 0 <= self.initial <= self.maximum:
            raise ValueError(
                "backoff waits must satisfy 0 <= initial <= maximum, "
                f"not initial={self.initial} and maximum={self.maximum}"
            )
        if self.budget < 0:
            raise ValueError(f"the retry budget must be 0 or more seconds, not {self.budget}")

    def wait(self, retry: int, *, uniform: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry).

        The wait lies between half and all of ``initial * 2**(retry-1)``, capped
        at ``maximum``: growing, bounded, and spread so that many clients that
        failed together do not come back together.
        """
        ceiling = min(self.maximum, self.initial * 2.0 ** (retry - 1))
        return ceiling / 2 + uniform() * ceiling / 2


def may_replay(replay: Replay, error: BucketsError) -> bool:
    """Whether a request with this ``replay`` rule may be sent again after ``error``."""
    if replay is Replay.NEVER:
        return False
    if isinstance(error, ConnectError):
        return True
    if replay is Replay.UNSENT:
        return False
    return isinstance(error, TransportError | ServerError)


def wait_before_retry(
    backoff: Backoff, replay: Replay, error: BucketsError, retry: int, waited: float
) -> float:
    """Seconds to wait before retry number ``retry`` of a request that failed with ``error``.

    Raises ``error``, its ``attempts`` set to the tries made, when the request
    may not be replayed, when the retries are used up, or when this wait would
    take the ``waited`` seconds already spent past the budget: the caller sees
    the last failure, not a wrapper around it. Call it from the ``except``
    block that caught ``error``, so the error is raised as it was caught.
    """
    if retry > backoff.retries or not may_replay(replay, error):
        error.attempts = retry
        raise error
    delay = backoff.wait(retry)
    if waited + delay > backoff.budget:
        error.attempts = retry
        raise error
    logger.warning("%s; retry %d of %d in %.2f s", error, retry, backoff.retries, delay)
    return delay
