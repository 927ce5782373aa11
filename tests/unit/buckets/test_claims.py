"""Coalescing of concurrent claims: one statement for many waiting withdraws, none delayed."""

from __future__ import annotations

import asyncio

import pytest

from workflow.buckets.stores.claiming import Claims


class Queue:
    """Hands out numbered works in order and records how many each statement asked for."""

    def __init__(self, works: int) -> None:
        self.left = [f"w{n}" for n in range(works)]
        self.requests: list[int] = []

    async def claim_many(self, count: int) -> list[str]:
        self.requests.append(count)
        await asyncio.sleep(0.01)
        taken, self.left = self.left[:count], self.left[count:]
        return taken


def test_waiting_claims_share_statements_and_each_work_goes_once() -> None:
    async def scenario() -> tuple[list[str | None], list[int]]:
        claims = Claims(max_batch=8, max_in_flight=1)
        queue = Queue(works=20)
        results = await asyncio.gather(*(claims.claim("f", queue.claim_many) for _ in range(25)))
        return results, queue.requests

    results, requests = asyncio.run(scenario())
    handed = [work for work in results if work is not None]
    assert sorted(handed, key=lambda w: int(w[1:])) == [f"w{n}" for n in range(20)]
    assert results.count(None) == 5
    assert requests[0] == 1  # the first claim starts alone, at once
    assert max(requests) == 8 and len(requests) < 25


def test_the_longest_waiting_request_gets_the_most_urgent_work() -> None:
    async def scenario() -> list[str | None]:
        claims = Claims(max_batch=8, max_in_flight=1)
        queue = Queue(works=10)
        tasks = []
        for _ in range(5):
            tasks.append(asyncio.ensure_future(claims.claim("f", queue.claim_many)))
            await asyncio.sleep(0)
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(scenario()) == ["w0", "w1", "w2", "w3", "w4"]


def test_filters_are_claimed_separately() -> None:
    async def scenario() -> list[str | None]:
        claims = Claims()
        first, second = Queue(works=1), Queue(works=1)
        return list(
            await asyncio.gather(
                claims.claim("a", first.claim_many), claims.claim("b", second.claim_many)
            )
        )

    assert asyncio.run(scenario()) == ["w0", "w0"]


def test_a_failing_statement_fails_only_its_own_requests() -> None:
    async def broken(count: int) -> list[str]:
        raise RuntimeError("database went away")

    async def scenario() -> None:
        claims = Claims()
        with pytest.raises(RuntimeError, match="database went away"):
            await claims.claim("f", broken)
        assert await claims.claim("f", Queue(works=1).claim_many) == "w0"

    asyncio.run(scenario())


def test_a_short_claim_retries_after_the_claims_that_held_rows_finish() -> None:
    """Rows locked but not taken by one statement were skipped by another: it tries again."""

    class Contended:
        def __init__(self) -> None:
            self.left = ["w0", "w1", "w2", "w3"]
            self.locked: set[str] = set()

        async def claim_many(self, count: int) -> list[str]:
            visible = [work for work in self.left if work not in self.locked]
            self.locked |= set(visible)  # like a lateral probe: locks more than it takes
            await asyncio.sleep(0.01)
            taken = visible[:count]
            self.left = [work for work in self.left if work not in taken]
            self.locked -= set(visible)
            return taken

    async def scenario() -> list[str | None]:
        claims = Claims(max_batch=1, max_in_flight=2)
        queue = Contended()
        return list(await asyncio.gather(*(claims.claim("f", queue.claim_many) for _ in range(4))))

    assert sorted(work for work in asyncio.run(scenario()) if work) == ["w0", "w1", "w2", "w3"]
