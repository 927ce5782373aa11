"""Concurrent clients in one event loop, bounded in time and count, with per-call latencies.

``drive`` runs ``clients`` coroutines that each call ``call(client)`` in a
loop until ``seconds`` have passed, ``max_calls`` calls have completed in
all, or a call returns ``DONE``. The HTTP benchmarks use one aiohttp
session with one kept-alive connection per client (aiohttp is already
installed as kopf's HTTP library, and costs the load generator less CPU
than httpx on a 2-core machine, where the generator shares the cores with
the server); the raw-driver ceilings use the same loop with database
connections instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench.harness import percentile

#: Returned by a call to stop its client (e.g. nothing left to withdraw).
DONE = object()


@dataclass
class Outcome:
    """What one timed run of clients did."""

    calls: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    exhausted: bool = False

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 0.50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 0.99) * 1000


async def drive(
    clients: int,
    call: Callable[[int], Awaitable[Any]],
    *,
    seconds: float,
    max_calls: int | None = None,
    keep_values: bool = False,
) -> Outcome:
    """Run ``clients`` loops of ``call`` (see the module docstring)."""
    began = time.perf_counter()
    deadline = began + seconds
    outcome = Outcome(calls=0, seconds=0.0)
    stop = asyncio.Event()

    async def client(number: int) -> None:
        while not stop.is_set() and time.perf_counter() < deadline:
            sent = time.perf_counter()
            value = await call(number)
            if value is DONE:
                outcome.exhausted = True
                stop.set()
                return
            outcome.latencies.append(time.perf_counter() - sent)
            outcome.calls += 1
            if keep_values:
                outcome.values.append(value)
            if max_calls is not None and outcome.calls >= max_calls:
                stop.set()

    await asyncio.gather(*(client(number) for number in range(clients)))
    outcome.seconds = time.perf_counter() - began
    return outcome


@dataclass
class Totals:
    """Slices of one kind of call, added up."""

    calls: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.calls += outcome.calls
        self.seconds += outcome.seconds
        self.latencies += outcome.latencies
        self.values += outcome.values

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


Slice = Callable[[float, "int | None"], Awaitable[Outcome]]


async def alternate(
    kinds: dict[str, Slice],
    *,
    rounds: int,
    seconds: float,
    budget: int | None = None,
    consuming: tuple[str, ...] = (),
) -> dict[str, Totals]:
    """Run short slices of each kind in turn, ``rounds`` times, and add them up per kind.

    On a shared machine load comes and goes in bursts; alternating slices
    exposes every kind to the same bursts, so their ratio is steadier than
    that of long runs one after the other. The order rotates each round.
    Kinds in ``consuming`` share ``budget`` calls (e.g. works in a queue):
    each of their slices also stops after its equal share of it, so every
    round finds the queue about as full for each kind.
    """
    totals = {name: Totals() for name in kinds}
    names = list(kinds)
    share = None if budget is None else max(1, budget // (rounds * max(1, len(consuming))))
    for number in range(rounds):
        order = names[number % len(names) :] + names[: number % len(names)]
        for name in order:
            outcome = await kinds[name](seconds, share if name in consuming else None)
            totals[name].add(outcome)
    return totals


def session(clients: int) -> Any:
    """An aiohttp session with one kept-alive connection per client."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients, force_close=False)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=60),
        skip_auto_headers=("User-Agent",),
    )


JSON_HEADERS = {"Content-Type": "application/json"}


async def post(http: Any, url: str, body: bytes) -> bytes:
    """POST a JSON body; the reply body, or an error naming the status."""
    async with http.post(url, data=body, headers=JSON_HEADERS) as reply:
        data = await reply.read()
        if reply.status != 200:
            raise RuntimeError(f"POST {url}: {reply.status} {data[:300]!r}")
        return data


async def get(http: Any, url: str) -> bytes:
    async with http.get(url) as reply:
        data = await reply.read()
        if reply.status != 200:
            raise RuntimeError(f"GET {url}: {reply.status} {data[:300]!r}")
        return data
