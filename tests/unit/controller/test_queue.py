"""The Work queue: one worker per uid at a time, nothing missed, timers replace each other."""

from __future__ import annotations

import asyncio

import pytest

from workflow.controller.queue import WorkQueue


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=10))


def test_a_uid_added_many_times_is_handed_out_once():
    async def scenario():
        queue = WorkQueue()
        for _ in range(5):
            queue.add("a")
        queue.add("b")
        assert len(queue) == 2
        assert [await queue.get(), await queue.get()] == ["a", "b"]
        assert len(queue) == 0

    run(scenario())


def test_a_uid_added_while_handled_comes_back_once_its_worker_is_done():
    async def scenario():
        queue = WorkQueue()
        queue.add("a")
        uid = await queue.get()
        queue.add("a")
        queue.add("a")
        assert len(queue) == 0, "handed out again while still being handled"
        queue.done(uid)
        assert len(queue) == 1
        assert await queue.get() == "a"
        queue.done("a")
        assert len(queue) == 0

    run(scenario())


def test_two_workers_never_hold_the_same_uid():
    async def scenario():
        queue = WorkQueue()
        holding: set[str] = set()
        handled: list[str] = []

        async def worker():
            while True:
                uid = await queue.get()
                assert uid not in holding
                holding.add(uid)
                await asyncio.sleep(0.001)
                handled.append(uid)
                holding.discard(uid)
                queue.done(uid)

        workers = [asyncio.create_task(worker()) for _ in range(4)]
        for round_ in range(50):
            for uid in ("a", "b", "c"):
                queue.add(uid)
            await asyncio.sleep(0.0005 * (round_ % 3))
        while len(queue) or holding:
            await asyncio.sleep(0.01)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        assert set(handled) == {"a", "b", "c"}

    run(scenario())


def test_timers_fire_in_order_and_a_later_timer_replaces_the_earlier():
    async def scenario():
        queue = WorkQueue()
        timers = asyncio.create_task(queue.run_timers())
        queue.later("slow", 0.3)
        queue.later("fast", 0.05)
        queue.later("moved", 0.05)
        queue.later("moved", 0.5)  # the latest plan wins
        queue.later("gone", 0.05)
        queue.forget("gone")
        assert queue.scheduled == 3
        assert await queue.get() == "fast"
        assert await queue.get() == "slow"
        loop = asyncio.get_running_loop()
        began = loop.time()
        assert await queue.get() == "moved"
        assert loop.time() - began > 0.1
        assert len(queue) == 0 and queue.scheduled == 0
        timers.cancel()
        await asyncio.gather(timers, return_exceptions=True)

    run(scenario())


@pytest.mark.parametrize("delay", [0, -1])
def test_no_delay_means_now(delay):
    async def scenario():
        queue = WorkQueue()
        queue.later("a", 5)
        queue.later("a", delay)
        assert len(queue) == 1 and queue.scheduled == 0

    run(scenario())


def test_replaced_timers_do_not_pile_up():
    async def scenario():
        queue = WorkQueue()
        timers = asyncio.create_task(queue.run_timers())
        for step in range(2000):
            queue.later("a", 100 + step)
            if step % 100 == 0:
                await asyncio.sleep(0)  # let the timer task run now and then
        await asyncio.sleep(0.01)
        assert queue.scheduled == 1
        assert len(queue._timers) < 200
        timers.cancel()
        await asyncio.gather(timers, return_exceptions=True)

    run(scenario())
