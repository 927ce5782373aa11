"""Benchmark 4: Works → Jobs → success on the local control plane, against the Job controller.

In one cluster, for each N, two runs in fresh namespaces:

1. **Job controller** - N bare Jobs of ``true`` are created (8 at a time);
   the Job controller creates their pods, the process kubelet runs them.
   Recorded: when the last pod was created and when the last Job completed.
2. **operator** - N Works of ``true`` (one attempt) are created the same
   way; the operator deposits each in buckets (SQLite), creates its Job,
   follows it and writes its status. Recorded: when the last Job was created
   and when the last Work reached ``success``; the operator's CPU seconds and
   peak RSS; the apiserver's write requests by verb and resource (from
   ``apiserver_request_total`` in ``/metrics`` before and after).

The apiserver's metrics carry no user agent, so the operator's writes per
Work are counted by resource: writes to ``works`` and ``works/status``,
``POST jobs``, and the Events whose source component is the operator's (listed
from the namespace after the run). As a cross-check the details also hold
all writes of the run less N (creating the Works) less the bare run's
writes per Job times N; that one is noisy, since the process kubelet's
binding retries vary from run to run.

Every pod is a real local process started by the process kubelet (a Python
program), which on 2 cores bounds how fast pods run; both runs pay that the
same way. The target compares throughputs of creation: Works → Jobs
(operator) against Jobs → Pods (Job controller).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench import kube, services
from bench.harness import Figure, Options, Report, phase, say
from bench.operating import WORKS_PATH, Operator, apply_crd, job_body, work_body
from workflow.controller.kube import EVENT_SOURCE

NAME = "operator_throughput"
TITLE = "operator throughput"
CREATE_TARGET = 0.50  # Work→Job rate ≥ 50% of the Job controller's Job→Pod rate
WRITES_TARGET = 8  # apiserver writes per successful single-attempt Work


def run(options: Options) -> Report:
    report = Report(NAME, TITLE, options.command(NAME), options.quick)
    sizes = options.pick((200, 1000), (5,))
    report.details["sizes"] = list(sizes)
    database = str(options.workdir / "buckets.sqlite3")
    with (
        kube.cluster(options.workdir / "cluster") as info,
        services.buckets("sqlite", database, options.workdir) as server,
    ):
        asyncio.run(_all(report, info, server, sizes, options))
    return report


async def _all(
    report: Report, info: Any, server: services.Buckets, sizes: Any, options: Options
) -> None:
    api = kube.Api(info)
    try:
        await apply_crd(api)
        for size in sizes:
            with phase(f"{size} bare Jobs"):
                bare = await _bare_jobs(api, size)
            with phase(f"{size} Works through the operator"):
                works = await _works(api, info, server, size, options)
            _figures(report, size, bare, works)
    finally:
        await api.close()


def _timeout(size: int) -> float:
    return 180 + 1.0 * size


async def _progress(label: str, size: int, watcher: kube.Watcher, state: str, began: float) -> None:
    """Wait until ``size`` objects reached ``state``, bounded; print progress every 15 s."""
    deadline = began + _timeout(size)
    shown = time.monotonic()
    while watcher.count(state) < size:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label}: {watcher.count(state)} of {size} reached {state} in time")
        if time.monotonic() - shown > 15:
            shown = time.monotonic()
            say(f"  {label}: {watcher.count(state)}/{size} {state} after {shown - began:.0f} s")
        await asyncio.sleep(0.2)


async def _bare_jobs(
    api: kube.Api, size: int, body: Callable[[str], dict[str, Any]] = job_body
) -> dict[str, Any]:
    namespace = f"bench-jobs-{size}-{int(time.time()) % 100000}"
    await api.namespace(namespace)
    jobs = kube.Watcher(
        api,
        f"/apis/batch/v1/namespaces/{namespace}/jobs",
        {"created": kube.always, "complete": kube.job_complete},
    )
    pods = kube.Watcher(
        api,
        f"/api/v1/namespaces/{namespace}/pods",
        {"created": kube.always, "succeeded": kube.pod_succeeded},
    )
    for watcher in (jobs, pods):
        watcher.start()
        await watcher.ready.wait()
    before = await api.request_counts()
    began = time.monotonic()
    bodies = [body(f"bare-{number}") for number in range(size)]
    created = await api.create_many(f"/apis/batch/v1/namespaces/{namespace}/jobs", bodies)
    await _progress("bare Jobs", size, pods, "created", began)
    await _progress("bare Jobs", size, jobs, "complete", began)
    after = await api.request_counts()
    result = {
        "namespace": namespace,
        "created_all": max(created) - began,
        "pods_created": (pods.last("created") or began) - began,
        "pods_succeeded": (pods.last("succeeded") or began) - began,
        "jobs_complete": (jobs.last("complete") or began) - began,
        "writes": kube.difference(after, before),
    }
    for watcher in (jobs, pods):
        await watcher.stop()
    say(f"  bare: {result}")
    with phase(f"deleting namespace {namespace}"):
        await api.delete_namespace(namespace)
    return result


async def _works(
    api: kube.Api,
    info: Any,
    server: services.Buckets,
    size: int,
    options: Options,
    **operator_env: str,
) -> dict[str, Any]:
    namespace = f"bench-works-{size}-{int(time.time()) % 100000}"
    await api.namespace(namespace)
    operator = Operator(
        info, namespace, server.url, options.workdir / f"operator-{size}.log", **operator_env
    ).start()
    try:
        operator.wait_serving()
        await asyncio.sleep(2)  # its watches are open
        jobs = kube.Watcher(
            api, f"/apis/batch/v1/namespaces/{namespace}/jobs", {"created": kube.always}
        )
        works = kube.Watcher(
            api, WORKS_PATH.format(namespace=namespace), {"success": kube.work_success}
        )
        for watcher in (jobs, works):
            watcher.start()
            await watcher.ready.wait()
        before = await api.request_counts()
        cpu_before = operator.usage().cpu
        began = time.monotonic()
        bodies = [work_body(f"work-{number}") for number in range(size)]
        created = await api.create_many(WORKS_PATH.format(namespace=namespace), bodies)
        await _progress("Works", size, jobs, "created", began)
        await _progress("Works", size, works, "success", began)
        await asyncio.sleep(3)  # the last finalizer removals and Events
        after = await api.request_counts()
        used = operator.usage()
        events = await _events(api, namespace)
        result = {
            "namespace": namespace,
            "created_all": max(created) - began,
            "jobs_created": (jobs.last("created") or began) - began,
            "works_success": (works.last("success") or began) - began,
            "cpu_seconds": used.cpu - cpu_before,
            "peak_rss_mb": used.peak_rss_mb,
            "writes": kube.difference(after, before),
            "events": events,
        }
        for watcher in (jobs, works):
            await watcher.stop()
    except Exception:
        say(f"operator log:\n{operator.tail()}")
        raise
    finally:
        operator.stop()
    say(f"  works: {result}")
    with phase(f"deleting namespace {namespace}"):
        await api.delete_namespace(namespace)
    return result


async def _events(api: kube.Api, namespace: str) -> dict[str, int]:
    """Events in ``namespace`` by ``component/reason`` (the operator's is EVENT_SOURCE)."""
    listed = await api.request("GET", f"/api/v1/namespaces/{namespace}/events")
    tally: dict[str, int] = {}
    for event in listed.get("items") or []:
        component = (event.get("source") or {}).get("component") or event.get(
            "reportingComponent", ""
        )
        key = f"{component}/{event.get('reason')}"
        tally[key] = tally.get(key, 0) + int(event.get("count") or 1)
    return dict(sorted(tally.items()))


def _figures(report: Report, size: int, bare: dict[str, Any], works: dict[str, Any]) -> None:
    report.details[f"N={size}"] = {"bare_jobs": bare, "works": works}
    job_controller = size / bare["pods_created"]
    creation = report.add(
        Figure(
            name=f"N={size}: Works → Jobs created",
            value=size / works["jobs_created"],
            unit="/s",
            ceiling=job_controller,
            ceiling_name="Job controller: Jobs → Pods created",
            target=f"≥ {CREATE_TARGET:.0%}",
            note=f"all Jobs created {works['jobs_created']:.1f} s after the first Work was posted; "
            f"all pods of the bare Jobs {bare['pods_created']:.1f} s",
        )
    )
    creation.met = (creation.ratio or 0) >= CREATE_TARGET
    report.add(
        Figure(
            name=f"N={size}: Works → success",
            value=size / works["works_success"],
            unit="/s",
            ceiling=size / bare["jobs_complete"],
            ceiling_name="bare Jobs → Complete",
            note=f"all Works success after {works['works_success']:.1f} s; "
            f"all bare Jobs Complete after {bare['jobs_complete']:.1f} s",
        )
    )
    report.add(
        Figure(
            name=f"N={size}: operator CPU per 1000 Works",
            value=works["cpu_seconds"] / size * 1000,
            unit="CPU s",
        )
    )
    report.add(Figure(name=f"N={size}: operator peak RSS", value=works["peak_rss_mb"], unit="MB"))
    by_resource, by_total, parts = _writes_per_work(size, bare, works)
    report.details[f"N={size}"]["writes_per_work"] = {
        **parts,
        "cross-check (all writes - N - bare writes per Job x N)": by_total,
    }
    figure = report.add(
        Figure(
            name=f"N={size}: apiserver writes per Work",
            value=by_resource,
            unit="writes",
            target=f"≤ {WRITES_TARGET}",
            note=", ".join(f"{key} {value:.2f}" for key, value in parts.items()),
        )
    )
    figure.met = by_resource <= WRITES_TARGET


def _writes_per_work(
    size: int, bare: dict[str, Any], works: dict[str, Any]
) -> tuple[float, float, dict[str, float]]:
    ours, theirs = works["writes"], bare["writes"]
    events_below = theirs.get("POST events", 0) / size
    operator_events = sum(
        n for key, n in works.get("events", {}).items() if key.startswith(f"{EVENT_SOURCE}/")
    )
    parts = {
        "PATCH works (finalizer)": ours.get("PATCH works", 0) / size,
        "PATCH works/status": ours.get("PATCH works/status", 0) / size,
        "POST jobs": ours.get("POST jobs", 0) / size,
        "POST events (operator)": operator_events / size
        if operator_events
        else max(0.0, ours.get("POST events", 0) / size - events_below),
        "other operator writes": sum(
            value
            for key, value in ours.items()
            if key.split()[1].startswith("works")
            and key not in ("PATCH works", "PATCH works/status", "POST works")
        )
        / size,
    }
    by_resource = sum(parts.values())
    by_total = (sum(ours.values()) - size) / size - sum(theirs.values()) / size
    return by_resource, by_total, parts
