"""What routes reach through ``Depends``: the application's store, settings and caches.

``create_app`` puts them on ``app.state``; a route names the one it needs as a
parameter (``store: StoreDep``), so a router holds no object of its own and
tests may build the application with any store. The dependencies are
``async``: FastAPI runs plain functions on a worker thread, a hop that would
cost each request more than the withdraw itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from workflow.buckets.prepared import PreparedWithdraws
from workflow.buckets.settings import BucketsSettings
from workflow.buckets.stores import Store

T = TypeVar("T")

#: Bodies longer than this are read (parsed, checked, validated) on a worker thread.
OFF_LOOP_BYTES = 256 * 1024


async def get_store(request: Request) -> Store:
    """The application's store."""
    store: Store = request.app.state.store
    return store


async def get_settings(request: Request) -> BucketsSettings:
    """The application's settings."""
    settings: BucketsSettings = request.app.state.settings
    return settings


async def get_withdraws(request: Request) -> PreparedWithdraws:
    """The application's prepared withdraw filters, reused across requests."""
    withdraws: PreparedWithdraws = request.app.state.withdraws
    return withdraws


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[BucketsSettings, Depends(get_settings)]
WithdrawsDep = Annotated[PreparedWithdraws, Depends(get_withdraws)]


async def read_off_loop(body: bytes, read: Callable[[], T]) -> T:
    """``read()`` of ``body``: at once when it is short, on a worker thread when it is long.

    Parsing and checking a body of several MiB takes a CPU-bound while
    (tens to hundreds of milliseconds, more to count and refuse millions of
    tiny values). On a worker thread the interpreter hands the event loop
    its turn every few milliseconds, so ``/healthz`` and other requests keep
    being answered meanwhile; short bodies are read at once, as a thread hop
    would cost more than the parse.
    """
    if len(body) <= OFF_LOOP_BYTES:
        return read()
    return await asyncio.to_thread(read)
