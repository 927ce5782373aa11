"""A queue of Works to look at: each handled by one worker at a time, some later.

The controller does not keep a task per Work. A Work that needs a look (its
resource, one of its Jobs or Pods changed, or the time its plan asked for
came) is put on this queue by its uid; a few workers take uids off it. The
queue gives three guarantees the controller relies on:

* a uid is never handed to two workers at once, so one Work's writes never
  race each other;
* a uid added while it is being handled is handed out again once its worker
  is done, so no change is missed;
* a uid added many times before a worker takes it is handed out once.

``later`` keeps one timer per uid (the latest replaces the earlier): a Work
waiting a day for its next attempt costs a heap entry, not a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time


class WorkQueue:
    """Uids to handle now, and uids to handle at a given time."""

    def __init__(self) -> None:
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._again: set[str] = set()
        self._due: dict[str, float] = {}
        self._timers: list[tuple[float, str]] = []
        self._rearmed = asyncio.Event()

    def __len__(self) -> int:
        """Uids waiting for a worker now."""
        return self._ready.qsize()

    @property
    def scheduled(self) -> int:
        """Uids with a timer."""
        return len(self._due)

    def add(self, uid: str) -> None:
        """Hand ``uid`` to a worker as soon as one is free (once, however often it is added)."""
        if uid in self._active:
            self._again.add(uid)
        elif uid not in self._queued:
            self._queued.add(uid)
            self._ready.put_nowait(uid)

    def later(self, uid: str, delay: float) -> None:
        """Add ``uid`` after ``delay`` seconds, replacing the timer it had."""
        if delay <= 0:
            self._due.pop(uid, None)
            self.add(uid)
            return
        due = time.monotonic() + delay
        self._due[uid] = due
        heapq.heappush(self._timers, (due, uid))
        if self._timers[0][1] == uid:
            self._rearmed.set()

    def forget(self, uid: str) -> None:
        """Drop the timer of ``uid`` (a Work that is gone or needs nothing more)."""
        self._due.pop(uid, None)

    async def get(self) -> str:
        """The next uid to handle; call ``done`` with it when finished."""
        uid = await self._ready.get()
        self._queued.discard(uid)
        self._active.add(uid)
        return uid

    def done(self, uid: str) -> None:
        """The worker finished with ``uid``: hand it out again if it changed meanwhile."""
        self._active.discard(uid)
        if uid in self._again:
            self._again.discard(uid)
            self.add(uid)

    async def run_timers(self) -> None:
        """Move uids whose time came onto the queue; runs until cancelled."""
        while True:
            self._rearmed.clear()
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                due, uid = heapq.heappop(self._timers)
                if self._due.get(uid) == due:  # not replaced by a later timer, nor forgotten
                    del self._due[uid]
                    self.add(uid)
            self._compact()
            wait = self._timers[0][0] - now if self._timers else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rearmed.wait(), timeout=wait)

    def _compact(self) -> None:
        """Drop replaced timers once they outnumber the live ones, so the heap stays small."""
        if len(self._timers) > 2 * len(self._due) + 64:
            self._timers = [(due, uid) for uid, due in self._due.items()]
            heapq.heapify(self._timers)
