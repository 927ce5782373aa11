"""When a failed request may be sent again, and how long the waits are."""

from __future__ import annotations

import pytest

from workflow.http.errors import (
    ConnectError,
    InvalidRequest,
    InvalidResponse,
    NotFound,
    ServerError,
    TransportError,
)
from workflow.http.retrying import Backoff, Replay, may_replay, wait_before_retry

CONNECT = ConnectError("GET", "http://b/x", "refused")
LOST = TransportError("GET", "http://b/x", "no reply")
FIVE = ServerError("GET", "http://b/x", 503, "busy")
FOUR = InvalidRequest("GET", "http://b/x", 422, "bad")
MISSING = NotFound("GET", "http://b/x", 404, "gone")
ODD = InvalidResponse("GET", "http://b/x", "not JSON")


@pytest.mark.parametrize(
    ("replay", "error", "expected"),
    [
        (Replay.ALWAYS, CONNECT, True),
        (Replay.ALWAYS, LOST, True),
        (Replay.ALWAYS, FIVE, True),
        (Replay.ALWAYS, FOUR, False),
        (Replay.ALWAYS, MISSING, False),
        (Replay.ALWAYS, ODD, False),
        (Replay.UNSENT, CONNECT, True),
        (Replay.UNSENT, LOST, False),
        (Replay.UNSENT, FIVE, False),
        (Replay.NEVER, CONNECT, False),
        (Replay.NEVER, LOST, False),
        (Replay.NEVER, FIVE, False),
    ],
)
def test_may_replay(replay: Replay, error, expected: bool) -> None:
    assert may_replay(replay, error) is expected


def test_waits_grow_exponentially_between_half_and_all_of_their_ceiling() -> None:
    backoff = Backoff(initial=0.5, maximum=100)
    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)]:
        assert backoff.wait(retry, uniform=lambda: 0.0) == ceiling / 2
        assert backoff.wait(retry, uniform=lambda: 1.0) == ceiling


def test_waits_never_pass_the_maximum() -> None:
    backoff = Backoff(initial=1, maximum=3)
    assert max(backoff.wait(retry, uniform=lambda: 1.0) for retry in range(1, 30)) == 3


def test_waits_are_spread_by_jitter() -> None:
    backoff = Backoff(initial=1, maximum=1)
    assert len({round(backoff.wait(1), 6) for _ in range(20)}) > 1


@pytest.mark.parametrize(
    "settings",
    [{"retries": -1}, {"initial": 2, "maximum": 1}, {"initial": -1}, {"budget": -1}],
)
def test_nonsense_settings_are_refused(settings: dict) -> None:
    with pytest.raises(ValueError):
        Backoff(**settings)


def test_a_replayable_failure_waits_within_the_backoff() -> None:
    backoff = Backoff(retries=3, initial=0.5, maximum=8, budget=30)
    error = ServerError("GET", "http://b/x", 503, "busy")
    assert 0.5 <= wait_before_retry(backoff, Replay.ALWAYS, error, 2, 0.0) <= 1.0


@pytest.mark.parametrize(
    ("replay", "retry", "waited"),
    [(Replay.NEVER, 1, 0.0), (Replay.ALWAYS, 4, 0.0), (Replay.ALWAYS, 1, 29.9)],
    ids=["not-replayable", "retries-used-up", "over-budget"],
)
def test_giving_up_raises_the_last_error_with_its_attempts(
    replay: Replay, retry: int, waited: float
) -> None:
    backoff = Backoff(retries=3, initial=0.5, maximum=8, budget=30)
    error = TransportError("GET", "http://b/x", "no reply")
    with pytest.raises(TransportError) as caught:
        wait_before_retry(backoff, replay, error, retry, waited)
    assert caught.value is error and error.attempts == retry
