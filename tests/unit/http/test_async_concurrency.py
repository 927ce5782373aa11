"""The async client keeps at most ``max_concurrent`` requests in flight; the rest wait their turn.

Many calls at once (the operator makes one per Work) must not pile up inside
httpx's connection pool, whose queue costs CPU per waiting request and whose
pool timeout would fail calls that only waited for their turn.
"""

from __future__ import annotations

import asyncio

import httpx

from workflow.http import AsyncBuckets


def test_many_calls_at_once_keep_at_most_max_concurrent_in_flight() -> None:
    in_flight, most = 0, 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return httpx.Response(200, json={"id": "1"})

    async def main() -> list[object]:
        transport = httpx.MockTransport(handler)
        async with AsyncBuckets(
            baseurl="http://buckets.test", transport=transport, max_concurrent=3, timeout=0.5
        ) as buckets:
            return await asyncio.gather(*(buckets.get(str(n)) for n in range(50)))

    answers = asyncio.run(main())
    assert len(answers) == 50 and all(answer == {"id": "1"} for answer in answers)
    assert most == 3
