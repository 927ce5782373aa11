"""The local control plane as the cluster benchmarks use it: create, watch, count requests.

One aiohttp session with the admin token talks to the apiserver on
127.0.0.1: ``create_many`` posts objects with bounded concurrency,
``Watcher`` follows one resource of a namespace and records when each object
first reached each state, and ``request_counts`` reads
``apiserver_request_total`` from the apiserver's ``/metrics`` so that a
benchmark can count the requests made between two moments, by verb and
resource.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import phase, say, use_repo_paths

WRITES = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY")
_METRIC = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


@contextlib.contextmanager
def cluster(root: Path, node: str = "process") -> Iterator[Any]:
    """A local control plane in ``root`` (started here, stopped and removed at the end).

    ``node`` is ``process`` (the process kubelet) or ``containerd`` (the real node).
    """
    use_repo_paths()
    import localcluster

    with phase(f"starting the local control plane ({node} node)"):
        info = localcluster.up(root, node=node, progress=lambda line: say(f"  {line}"))
    try:
        yield info
    finally:
        with phase("stopping the local control plane"):
            localcluster.down(root, purge=True, progress=lambda line: None)


class Api:
    """Admin access to the apiserver over one aiohttp session."""

    def __init__(self, info: Any, concurrency: int = 8) -> None:
        import aiohttp

        self.base = info.api_url
        context = ssl.create_default_context(cafile=str(info.ca_file))
        self.session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {info.token}"},
            connector=aiohttp.TCPConnector(ssl=context, limit=concurrency + 8),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        self.concurrency = concurrency

    async def close(self) -> None:
        await self.session.close()

    async def request(self, method: str, path: str, body: Any = None, **options: Any) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": options.pop("content_type", "application/json")}
        for attempt in range(5):
            async with self.session.request(
                method, self.base + path, data=data, headers=headers, params=options or None
            ) as reply:
                text = await reply.text()
                if reply.status == 429 or (reply.status >= 500 and attempt < 4):
                    await asyncio.sleep(0.5 * (attempt + 1))
                    continue
                if reply.status >= 400:
                    raise RuntimeError(f"{method} {path}: {reply.status} {text[:300]}")
                return json.loads(text) if text else None
        raise RuntimeError(f"{method} {path}: still throttled after 5 tries")

    async def create_many(self, path: str, bodies: list[dict[str, Any]]) -> list[float]:
        """POST every body to ``path``, ``concurrency`` at a time; the time each was created."""
        queue = list(reversed(bodies))
        created: list[float] = []

        async def worker() -> None:
            while queue:
                body = queue.pop()
                await self.request("POST", path, body)
                created.append(time.monotonic())

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        return created

    async def namespace(self, name: str) -> None:
        """Create namespace ``name`` and wait for its default ServiceAccount."""
        await self.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                await self.request("GET", f"/api/v1/namespaces/{name}/serviceaccounts/default")
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"the default ServiceAccount of {name} did not appear")

    async def delete_namespace(self, name: str, timeout: float = 180) -> bool:
        """Delete ``name`` and wait (bounded) until it is gone; whether it went."""
        with contextlib.suppress(RuntimeError):
            await self.request("DELETE", f"/api/v1/namespaces/{name}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                await self.request("GET", f"/api/v1/namespaces/{name}")
            except RuntimeError as error:
                if " 404 " in str(error):
                    return True
            await asyncio.sleep(1)
        return False

    async def request_counts(self) -> Counter[tuple[str, str, str]]:
        """``apiserver_request_total`` summed over codes, by (verb, resource, subresource)."""
        import aiohttp

        text = ""
        for attempt in range(6):  # an apiserver under load may cut a long reply short
            try:
                async with self.session.get(self.base + "/metrics") as reply:
                    text = await reply.text()
                break
            except (TimeoutError, aiohttp.ClientError):
                if attempt == 5:
                    raise
                await asyncio.sleep(1 + attempt)
        counts: Counter[tuple[str, str, str]] = Counter()
        for line in text.splitlines():
            match = _METRIC.match(line)
            if not match:
                continue
            labels = dict(_LABEL.findall(match["labels"]))
            key = (
                labels.get("verb", ""),
                labels.get("resource", ""),
                labels.get("subresource", ""),
            )
            counts[key] += int(float(match["value"]))
        return counts


def difference(
    after: Counter[tuple[str, str, str]], before: Counter[tuple[str, str, str]]
) -> dict[str, int]:
    """Writes between two ``request_counts``, keyed ``VERB resource[/subresource]``."""
    changes = {}
    for key, value in after.items():
        delta = value - before.get(key, 0)
        verb, resource, subresource = key
        if delta and verb in WRITES:
            name = f"{verb} {resource}" + (f"/{subresource}" if subresource else "")
            changes[name] = changes.get(name, 0) + delta
    return dict(sorted(changes.items()))


@dataclass
class Watcher:
    """Follows one resource in a namespace; ``first[state]`` maps names to first-seen times."""

    api: Api
    path: str
    states: dict[str, Callable[[dict[str, Any]], bool]]
    first: dict[str, dict[str, float]] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self.first = {state: {} for state in self.states}
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def count(self, state: str) -> int:
        return len(self.first[state])

    def last(self, state: str) -> float | None:
        times = self.first[state].values()
        return max(times) if times else None

    async def _run(self) -> None:
        resource_version = None
        while True:
            params = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": "600"}
            if resource_version:
                params["resourceVersion"] = resource_version
            try:
                async with self.api.session.get(self.api.base + self.path, params=params) as reply:
                    self.ready.set()
                    async for line in reply.content:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        item = event.get("object") or {}
                        meta = item.get("metadata") or {}
                        resource_version = meta.get("resourceVersion") or resource_version
                        if event.get("type") in ("ADDED", "MODIFIED"):
                            self._see(item)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                say(f"  watch {self.path} restarts: {error}")
                await asyncio.sleep(0.5)

    def _see(self, item: dict[str, Any]) -> None:
        name = item["metadata"]["name"]
        now = time.monotonic()
        for state, test in self.states.items():
            if name not in self.first[state] and test(item):
                self.first[state][name] = now


def job_complete(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Complete" and c.get("status") == "True" for c in conditions)


def pod_succeeded(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Succeeded"


def work_success(work: dict[str, Any]) -> bool:
    return (work.get("status") or {}).get("phase") == "success"


def always(_: dict[str, Any]) -> bool:
    return True
