"""Benchmark 7: how soon buckets shows a Work running after its container started.

On the local control plane, with buckets on SQLite and the operator running
the real runner (``python -m workflow run``), N Works are created one every
``SPACING`` seconds; each runs a command that sleeps ``SLEEP`` seconds, so a
few run at once, as on a busy cluster. Meanwhile the benchmark asks buckets
for the Works of the pipeline every 0.1 s (one ``POST /view``) and notes
when each first shows ``running``. Afterwards it reads each pod's
``containerStatuses[0].state.terminated.startedAt``.

Figures: the delay from the container starting to buckets showing the Work
running (median and max). Kubernetes writes ``startedAt`` in whole seconds,
cut down, so each delay is up to 1 s longer than the true one; the polling
period (0.1 s) bounds it too. Two writers race to tell buckets: the operator
when it sees the pod running, the runner once its interpreter started;
the details keep, per Work, the start time buckets first showed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from typing import Any

import httpx

from bench import kube, services
from bench.harness import Figure, Options, Report, median, phase, say
from bench.operating import WORKS_PATH, Operator, apply_crd
from workflow.controller.resource import WORK_UID_LABEL

NAME = "buckets_running"
TITLE = "running in buckets"
PIPELINE = "bench-running"
SPACING = 1.0  # seconds between two Works created
SLEEP = 4  # seconds each Work runs
POLL = 0.1  # seconds between two looks at buckets
TARGET_SECONDS = 2.0  # the most a Work may wait to show running in buckets


def work_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "workflow.dev/v1alpha1",
        "kind": "Work",
        "metadata": {"name": name},
        "spec": {
            "pipeline": PIPELINE,
            "site": "local",
            "user": "bench",
            "command": ["sleep", str(SLEEP)],
            "timeout": 600,
            "retries": 0,
        },
    }


def run(options: Options) -> Report:
    report = Report(NAME, TITLE, options.command(NAME), options.quick)
    size = options.pick(50, 3)
    report.details["works"] = size
    database = str(options.workdir / "buckets.sqlite3")
    with (
        kube.cluster(options.workdir / "cluster") as info,
        services.buckets("sqlite", database, options.workdir) as server,
    ):
        delays = asyncio.run(_measure(info, server, size, options))
    _figures(report, delays)
    return report


async def _measure(
    info: Any, server: services.Buckets, size: int, options: Options
) -> list[dict[str, float]]:
    api = kube.Api(info)
    namespace = f"bench-running-{int(time.time()) % 100000}"
    try:
        await apply_crd(api)
        await api.namespace(namespace)
        operator = Operator(info, namespace, server.url, options.workdir / "operator.log")
        operator.env["WORKFLOW_OPERATOR_RUNNER_COMMAND"] = json.dumps(
            [sys.executable, "-m", "workflow", "run"]
        )
        operator.start()
        try:
            operator.wait_serving()
            await asyncio.sleep(2)  # its watches are open
            with phase(f"{size} Works, one every {SPACING} s, watched in buckets"):
                seen = await _watch(api, server, namespace, size)
            pods = await api.request("GET", f"/api/v1/namespaces/{namespace}/pods")
        except Exception:
            say(f"operator log:\n{operator.tail()}")
            raise
        finally:
            operator.stop()
        return _delays(pods.get("items") or [], seen)
    finally:
        await api.close()


async def _watch(
    api: kube.Api, server: services.Buckets, namespace: str, size: int
) -> dict[str, tuple[float, float]]:
    """When each Work (by buckets id) first showed running: (seen at, start recorded)."""
    seen: dict[str, tuple[float, float]] = {}
    finished: set[str] = set()
    body = {
        "query": {"pipeline": PIPELINE},
        "projection": {"id": True, "status": True, "start": True},
        "limit": None,
    }

    async def create() -> None:
        for number in range(size):
            await api.request(
                "POST", WORKS_PATH.format(namespace=namespace), work_body(f"w{number}")
            )
            await asyncio.sleep(SPACING)

    creating = asyncio.get_running_loop().create_task(create())
    deadline = time.monotonic() + 120 + size * (SPACING + SLEEP)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        while len(finished) < size:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(finished)} of {size} Works finished in time")
            reply = await http.post("/view", json=body)
            now = time.time()
            for record in reply.json():
                if record["status"] == "running" and record["id"] not in seen:
                    seen[record["id"]] = (now, record["start"])
                if record["status"] in ("success", "failure"):
                    finished.add(record["id"])
            await asyncio.sleep(POLL)
    await creating
    return seen


def _delays(pods: list[dict[str, Any]], seen: dict[str, tuple[float, float]]) -> list[dict]:
    delays = []
    for pod in pods:
        uid = pod["metadata"]["labels"][WORK_UID_LABEL]
        state = (pod["status"].get("containerStatuses") or [{}])[0].get("state") or {}
        started = (state.get("terminated") or state.get("running") or {}).get("startedAt")
        if started is None or uid not in seen:
            delays.append({"work": uid, "missing": 1.0})
            continue
        container = datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
        shown, recorded = seen[uid]
        delays.append({"work": uid, "from_container": shown - container, "start_shown": recorded})
    return delays


def _figures(report: Report, delays: list[dict]) -> None:
    missing = [delay["work"] for delay in delays if "missing" in delay]
    measured = [delay for delay in delays if "missing" not in delay]
    report.details["never_shown_running"] = missing
    report.details["delays"] = measured
    container = sorted(delay["from_container"] for delay in measured)
    note = (
        f"{len(measured)} Works; startedAt is in whole seconds (cut down), so each delay is up "
        f"to 1 s above the true one; buckets polled every {POLL} s"
    )
    for name, values in (("median", median(container)), ("max", container[-1])):
        figure = report.add(
            Figure(
                name=f"container started → buckets shows running, {name}",
                value=values,
                unit="s",
                target=f"≤ {TARGET_SECONDS:.0f} s",
                note=note,
                runs=container,
            )
        )
        figure.met = values <= TARGET_SECONDS and not missing
    say(
        f"  {len(measured)} Works: container → running median {median(container):.2f} s, "
        f"max {container[-1]:.2f} s; never shown running: {len(missing)}"
    )
