"""The withdraw path's plumbing: filters read once per body, and the writer thread's hand-over."""

from __future__ import annotations

import asyncio
import threading

import pytest

from workflow.buckets.prepared import PreparedWithdraws
from workflow.buckets.stores.serial import SerialThread


async def _nothing() -> str | None:
    return None


def test_claimers_are_kept_by_body_bytes_up_to_a_bound() -> None:
    kept = PreparedWithdraws(max_entries=2, max_key_bytes=16)
    first, second, third = _claimer(), _claimer(), _claimer()
    assert kept.get(b'{"pipeline":"a"}') is None
    assert kept.keep(b'{"pipeline":"a"}', first) is first
    assert kept.get(b'{"pipeline":"a"}') is first
    assert kept.get(b'{"pipeline": "a"}') is None  # other bytes, other entry
    kept.keep(b"b", second)
    kept.get(b'{"pipeline":"a"}')  # used last: "b" is now the oldest
    kept.keep(b"c", third)
    assert len(kept) == 2
    assert kept.get(b"b") is None
    assert kept.get(b'{"pipeline":"a"}') is first
    assert kept.keep(b"x" * 17, second) is second  # too long to keep, still returned
    assert kept.get(b"x" * 17) is None


def _claimer():  # a distinct function object each time
    async def claim() -> str | None:
        return await _nothing()

    return claim


def test_the_serial_thread_runs_functions_in_order_on_one_thread() -> None:
    async def scenario() -> tuple[list[int], set[str], str]:
        serial = SerialThread("test-serial")
        serial.start()
        seen: list[int] = []
        names: set[str] = set()

        def step(number: int) -> int:
            seen.append(number)
            names.add(threading.current_thread().name)
            return number * 2

        results = await asyncio.gather(*(serial.run(lambda n=n: step(n)) for n in range(50)))
        assert results == [n * 2 for n in range(50)]

        def fail() -> None:
            raise LookupError("nope")

        with pytest.raises(LookupError, match="nope"):
            await serial.run(fail)
        serial.stop()
        return seen, names, threading.current_thread().name

    seen, names, caller = asyncio.run(scenario())
    assert seen == list(range(50))
    assert names == {"test-serial"} and caller not in names


def test_a_call_cancelled_before_its_turn_is_not_run() -> None:
    async def scenario() -> list[str]:
        serial = SerialThread("test-serial")
        serial.start()
        ran: list[str] = []
        gate = threading.Event()
        blocker = asyncio.ensure_future(serial.run(lambda: gate.wait(5)))
        late = asyncio.ensure_future(serial.run(lambda: ran.append("late")))
        await asyncio.sleep(0.05)
        late.cancel()
        gate.set()
        assert await blocker is True
        assert await serial.run(lambda: "after") == "after"
        serial.stop()
        return ran

    assert asyncio.run(scenario()) == []


def test_the_serial_thread_must_be_started() -> None:
    async def scenario() -> None:
        await SerialThread("never-started").run(lambda: None)

    with pytest.raises(RuntimeError, match="not started"):
        asyncio.run(scenario())
