"""Benchmark 5a: the operator with 10,000 Work objects present — memory and resync time.

The Works are created first, each with a status that says its first attempt
failed and the next waits for a backoff a day away (phase ``queued``,
``bucketsId`` set, ``BackendSynced=True``). Such a Work is unfinished, so the
operator tracks it and keeps a timer for its next attempt, but it needs no
Job and no buckets call: the operator holds 10,000 waiting Works and does
nothing else, the worst case for its memory that needs no pods. Their status
lacks ``observedGeneration``, so the first look at each writes one status
patch, after adding the operator's finalizer.

Measured in two starts of the operator:

* **first start** - seconds until the apiserver counted a finalizer patch
  and a status patch per Work (every Work looked at once), then until the
  operator is idle (under 5% of a core for 3 s); RSS then, and peak RSS;
* **restart** - the same Works, finalizers and status already written (the
  usual case after an upgrade or a crash): seconds until idle, RSS, and the
  writes it made (should be none).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import kube, services
from bench.harness import Figure, Options, Report, phase, say
from bench.operating import WORKS_PATH, Operator, apply_crd, wait_idle, work_body

NAME = "operator_scale"
TITLE = "operator at scale"
RSS_TARGET_MB = 150.0


def run(options: Options) -> Report:
    report = Report(NAME, TITLE, options.command(NAME), options.quick)
    size = options.pick(10_000, 20)
    report.details["works"] = size
    database = str(options.workdir / "buckets.sqlite3")
    with (
        kube.cluster(options.workdir / "cluster") as info,
        services.buckets("sqlite", database, options.workdir) as server,
    ):
        asyncio.run(_measure(report, info, server, size, options))
    return report


def waiting_status(name: str, uid: str) -> dict[str, Any]:
    """Attempt 1 failed; attempt 2 waits a day. Unfinished, but nothing to do until then."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return {
        "phase": "queued",
        "reason": "Error",
        "bucketsId": uid,
        "attempt": 1,
        "job": f"{name}-a1",
        "creation": now - 60,
        "start": now - 50,
        "stop": now - 40,
        "nextAttemptAt": now + 86_400,
        "message": "attempt 1 of 2 failed (Error: bench); attempt 2 in 86400 s",
        "history": [
            {
                "attempt": 1,
                "job": f"{name}-a1",
                "exitCode": 1,
                "reason": "Error",
                "message": "bench",
                "start": now - 50,
                "stop": now - 40,
            }
        ],
        "conditions": [
            {
                "type": "Succeeded",
                "status": "Unknown",
                "reason": "Retrying",
                "message": "bench",
                "lastTransitionTime": stamp,
            },
            {
                "type": "BackendSynced",
                "status": "True",
                "reason": "Synced",
                "message": "bench",
                "lastTransitionTime": stamp,
            },
        ],
    }


async def _create(api: kube.Api, namespace: str, size: int) -> None:
    path = WORKS_PATH.format(namespace=namespace)
    queue = list(range(size))

    async def worker() -> None:
        while queue:
            name = f"work-{queue.pop()}"
            body = work_body(name)
            body["spec"]["retries"] = 1
            created = await api.request("POST", path, body)
            await api.request(
                "PATCH",
                f"{path}/{name}/status",
                {"status": waiting_status(name, created["metadata"]["uid"])},
                content_type="application/merge-patch+json",
            )

    await asyncio.gather(*(worker() for _ in range(api.concurrency)))


async def _looked_at(api: kube.Api, before: Any, size: int, began: float, timeout: float) -> float:
    """Seconds until the apiserver counted a finalizer and a status patch for every Work."""
    deadline = began + timeout
    shown = time.monotonic()
    while time.monotonic() < deadline:
        writes = kube.difference(await api.request_counts(), before)
        done = min(writes.get("PATCH works", 0), writes.get("PATCH works/status", 0))
        if done >= size:
            return time.monotonic() - began
        if time.monotonic() - shown > 15:
            shown = time.monotonic()
            say(f"  looked at: {done}/{size} after {shown - began:.0f} s")
        await asyncio.sleep(1)
    raise TimeoutError(f"the operator did not look at all {size} Works within {timeout:.0f} s")


async def _measure(
    report: Report, info: Any, server: services.Buckets, size: int, options: Options
) -> None:
    api = kube.Api(info, concurrency=16)
    namespace = "bench-scale"
    try:
        await apply_crd(api)
        await api.namespace(namespace)
        with phase(f"creating {size} waiting Works"):
            began = time.monotonic()
            await _create(api, namespace, size)
            report.details["create_seconds"] = time.monotonic() - began
        timeout = options.pick(900.0, 120.0)
        runs: dict[str, Any] = {}
        for run_name in ("first start", "restart"):
            log = options.workdir / f"operator-{run_name.replace(' ', '-')}.log"
            before = await api.request_counts()
            operator = Operator(info, namespace, server.url, log).start()
            try:
                with phase(f"operator {run_name} with {size} Works"):
                    serving = operator.wait_serving()
                    looked = None
                    if run_name == "first start":
                        looked = await _looked_at(api, before, size, operator.started, timeout)
                    idle = await wait_idle(operator, timeout=timeout)
                    used = operator.usage()
                    writes = kube.difference(await api.request_counts(), before)
                runs[run_name] = {
                    "serving_seconds": serving,
                    "looked_at_seconds": looked,
                    "idle_seconds": idle,
                    "rss_mb": used.rss_mb,
                    "peak_rss_mb": used.peak_rss_mb,
                    "cpu_seconds": used.cpu,
                    "writes": writes,
                }
                say(f"  {run_name}: {runs[run_name]}")
            except Exception:
                say(f"operator log:\n{operator.tail()}")
                raise
            finally:
                with phase(f"stopping the operator ({run_name})"):
                    operator.stop(grace=120)
        report.details["runs"] = runs
        first, again = runs["first start"], runs["restart"]
        report.add(
            Figure(
                name=f"{size} Works: first start, every Work looked at once",
                value=first["looked_at_seconds"],
                unit="s",
                note=f"idle after {first['idle_seconds']} s; CPU {first['cpu_seconds']:.0f} s",
            )
        )
        report.add(
            Figure(
                name=f"{size} Works: restart until idle",
                value=again["idle_seconds"] or float("nan"),
                unit="s",
                note=f"writes during the restart: {again['writes']}",
            )
        )
        for run_name, data in runs.items():
            figure = report.add(
                Figure(
                    name=f"{size} Works: operator RSS after {run_name}",
                    value=data["rss_mb"],
                    unit="MB",
                    target=f"≤ {RSS_TARGET_MB:.0f} MB",
                    note=f"peak {data['peak_rss_mb']:.0f} MB",
                )
            )
            figure.met = data["rss_mb"] <= RSS_TARGET_MB
    finally:
        await api.close()  # the cluster, Works and all, is removed when it stops
