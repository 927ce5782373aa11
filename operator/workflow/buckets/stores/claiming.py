"""Coalescing concurrent claims: many waiting withdraws, one database statement.

Under load most of a claim's cost is the round trip: the statement, the
commit, the driver's bookkeeping. Withdraws that use the same filter and
arrive while earlier claims are still running are therefore answered
together: one statement claims up to ``n`` works (``LIMIT n`` with ``SKIP
LOCKED``) and hands them to the waiting requests in arrival order, the most
urgent work to the request that has waited longest. A lone withdraw is never
delayed: a claim starts at once whenever fewer than ``max_in_flight`` claims
of that filter are running.

Each work still goes to exactly one request. A statement that returns fewer
works than requests may have skipped rows another running claim of the same
filter had locked (``SKIP LOCKED``) without taking them all; it then waits
for those claims and tries again (up to ``MAX_RETRIES`` times) for its
remaining requests. What is
still missing after that is answered with None: nothing left to claim.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("workflow.buckets")

#: Most times a short claim waits for the others of its filter and tries again.
MAX_RETRIES = 8
#: Claims one statement: given how many works to claim, returns them (JSON texts) best first.
ClaimMany = Callable[[int], Awaitable[list[str]]]


@dataclass
class _Lane:
    """The waiting and running claims of one filter."""

    claim_many: ClaimMany
    waiting: deque[asyncio.Future[str | None]] = field(default_factory=deque)
    in_flight: int = 0
    running: set[asyncio.Task[None]] = field(default_factory=set)
    #: Claims waiting to retry; their statements are done, so they hold no row locks.
    retrying: set[asyncio.Task[None]] = field(default_factory=set)


class Claims:
    """Runs claims, coalescing those of the same filter (see the module docstring)."""

    def __init__(self, *, max_batch: int = 32, max_in_flight: int = 2) -> None:
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._lanes: dict[Hashable, _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def claim(self, key: Hashable, claim_many: ClaimMany) -> str | None:
        """Claim one work for the filter identified by ``key`` (None if none is left)."""
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(claim_many)
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        lane.waiting.append(future)
        if lane.in_flight < self.max_in_flight:
            self._launch(key, lane)
        return await future

    def _launch(self, key: Hashable, lane: _Lane) -> None:
        batch: list[Any] = []
        while lane.waiting and len(batch) < self.max_batch:
            future = lane.waiting.popleft()
            if not future.done():
                batch.append(future)
        if not batch:
            self._retire(key, lane)
            return
        lane.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._run(key, lane, batch))
        self._tasks.add(task)
        lane.running.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lane.running.discard)

    async def _run(
        self, key: Hashable, lane: _Lane, batch: list[asyncio.Future[str | None]]
    ) -> None:
        try:
            documents = await lane.claim_many(len(batch))
            this = asyncio.current_task()
            for _ in range(MAX_RETRIES):
                others = lane.running - lane.retrying - {this}
                if len(documents) == len(batch) or not others or this is None:
                    break
                lane.retrying.add(this)
                try:
                    await asyncio.wait(others)
                finally:
                    lane.retrying.discard(this)
                documents += await lane.claim_many(len(batch) - len(documents))
        except asyncio.CancelledError:
            for future in batch:
                future.cancel()
            raise
        except Exception as error:
            for future in batch:
                if not future.done():
                    future.set_exception(error)
        else:
            claimed = iter(documents)
            for future in batch:
                if not future.done():
                    future.set_result(next(claimed, None))
            unsent = sum(1 for _ in claimed)
            if unsent:
                log.warning(
                    "%d claimed works lost their requests before the reply; they stay "
                    "running until the expired-work audit fails them",
                    unsent,
                )
        finally:
            lane.in_flight -= 1
            if lane.waiting:
                self._launch(key, lane)
            else:
                self._retire(key, lane)

    def _retire(self, key: Hashable, lane: _Lane) -> None:
        if not lane.waiting and lane.in_flight == 0 and self._lanes.get(key) is lane:
            del self._lanes[key]

    async def drain(self) -> None:
        """Wait for the claims that are running (before closing the store)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
