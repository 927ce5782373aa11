"""buckets tells the truth about a Work the operator runs: running, which attempt, since when.

A person or a dashboard watching buckets must see what the cluster does:
``running`` with the attempt number and its start time shortly after the
Work's container starts, for every attempt; and the outcome, never undone by
a start record that arrives late. Real parts: the local control plane with
the process kubelet, a buckets server over HTTP, the operator as a process.
"""

from __future__ import annotations

import time
from datetime import datetime

import httpx
import pytest
from kubernetes import client

from workflow.controller import resource

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

#: Seconds from the container starting to buckets showing it running, at most (on a busy machine).
MOST_DELAY = 5.0


def container_started(kube: client.ApiClient, namespace: str, work: str) -> dict[int, float]:
    """When the container of each attempt's pod started (Unix time), by attempt."""
    pods = client.CoreV1Api(kube).list_namespaced_pod(
        namespace, label_selector=f"{resource.WORK_NAME_LABEL}={work}"
    )
    started = {}
    for pod in pods.items:
        for status in pod.status.container_statuses or []:
            state = status.state.running or status.state.terminated
            if state is not None and state.started_at is not None:
                attempt = int(pod.metadata.labels[resource.ATTEMPT_LABEL])
                started[attempt] = datetime.timestamp(state.started_at)
    return started


def test_buckets_shows_every_attempt_running_and_refuses_a_late_start(
    operator_process, works, buckets_process, kube, namespace, tmp_path
) -> None:
    operator_process(buckets_process.url, **buckets_process.operator_env)
    counter = tmp_path / "count"
    # Attempt 1 runs 4 s and fails; attempt 2 runs 4 s and succeeds.
    script = (
        "import pathlib,sys,time; p=pathlib.Path(sys.argv[1]); "
        "n=int(p.read_text()) if p.exists() else 0; p.write_text(str(n+1)); "
        "time.sleep(4); sys.exit(1 if n == 0 else 0)"
    )
    works.apply(
        "watched",
        {
            "pipeline": "truth",
            "site": "local",
            "user": "tester",
            "timeout": 60,
            "retries": 1,
            "backoff": 1,
            "command": ["python3", "-c", script, str(counter)],
        },
    )
    work = works.wait("watched", lambda w: (w.get("status") or {}).get("bucketsId"), what="deposit")
    url = f"{buckets_process.url}/work/{work['status']['bucketsId']}"

    first_seen_running: dict[int, tuple[float, float]] = {}  # attempt: (seen at, start)
    seen = []
    with httpx.Client(headers=buckets_process.headers, timeout=10) as http:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            record = http.get(url).json()
            state = (record["status"], record["attempt"], record["start"])
            if not seen or seen[-1] != state:
                seen.append(state)
            if record["status"] == "running" and record["attempt"] not in first_seen_running:
                first_seen_running[record["attempt"]] = (time.time(), record["start"])
            if record["status"] in ("success", "failure") and record["attempt"] == 2:
                break
            time.sleep(0.1)
        final = http.get(url).json()

        assert sorted(first_seen_running) == [1, 2], f"buckets went through {seen}"
        assert (final["status"], final["attempt"]) == ("success", 2), final
        started = container_started(kube, namespace, "watched")
        for attempt, (seen_at, start) in first_seen_running.items():
            assert start is not None, seen
            # buckets shows the start time the runner took, after the container started.
            assert started[attempt] - 1 <= start <= seen_at, (attempt, started, start, seen_at)
            assert seen_at - started[attempt] <= MOST_DELAY, (attempt, started, seen_at)

        # A start record of attempt 1, or of attempt 2, arriving now is refused and changes nothing.
        for attempt in (1, 2):
            late = {**final, "status": "running", "attempt": attempt, "stop": None}
            late["start"] = time.time()
            reply = http.put(url.rsplit("/", 1)[0], params={"guard": "attempt"}, json=[late])
            assert reply.status_code == 409, reply.text
            assert reply.json()["detail"].startswith("attempt: "), reply.text
        after = http.get(url).json()
        assert (after["status"], after["attempt"], after["stop"]) == (
            "success",
            2,
            final["stop"],
        )
