"""Faults below and beside the operator: killed pods, Jobs deleted behind its back, the apiserver
restarting. Each Work fails the attempt that was hit, with a reason that says what happened, and
its retry succeeds; no attempt runs twice and buckets agrees with the Work resource.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from kubernetes import client
from reliability_helpers import (
    KINDS,
    Planned,
    audit,
    buckets_record,
    is_settled,
    runs,
    work_spec,
)

from workflow.controller import resource

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

HANG = 120.0
#: Seconds the apiserver stays down. Longer outages (try 40) make the Job controller, whose
#: work queue backs off meanwhile, notice finished Jobs late: past their deadline.
DOWNTIME = float(os.environ.get("WORKFLOW_RELIABILITY_APISERVER_DOWNTIME", "3"))


def first_pod(core: client.CoreV1Api, namespace: str, work: str) -> client.V1Pod:
    pods = core.list_namespaced_pod(
        namespace, label_selector=f"{resource.WORK_NAME_LABEL}={work},{resource.ATTEMPT_LABEL}=1"
    ).items
    assert len(pods) == 1, [pod.metadata.name for pod in pods]
    return pods[0]


def runner_pid(cluster, pod: client.V1Pod) -> int:
    """The pid of the pod's container process (the runner), from the process kubelet's record."""
    record = cluster.root / "kubelet" / "pods" / pod.metadata.uid / "containers" / "work"
    return json.loads((record / "process.json").read_text())["pid"]


def hung(marker: Path) -> int:
    """The pid the first run of a hang-first Work wrote, once it has written it."""
    pid_file = Path(f"{marker}.pid")
    return int(pid_file.read_text()) if pid_file.exists() and pid_file.read_text() else 0


def apply_hanging(works, tmp_path: Path, name: str) -> Planned:
    kind = KINDS["hang-first"]
    marker = tmp_path / name
    works.apply(name, work_spec("nodefaults", kind, marker, seconds=HANG))
    return Planned(name, kind, marker)


def settle(works, names: list[str], timeout: float = 240) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    settled: dict[str, dict] = {}
    while len(settled) < len(names) and time.monotonic() < deadline:
        for name in names:
            if name not in settled and is_settled(work := works.get(name)):
                settled[name] = work
        time.sleep(0.5)
    missing = {name: works.get(name).get("status") for name in names if name not in settled}
    assert not missing, f"not settled in {timeout} s: {json.dumps(missing)[:3000]}"
    return settled


def test_a_killed_pod_process_fails_its_attempt_as_killed_and_the_retry_succeeds(
    cluster, operator_process, works, buckets_process, kube, namespace, tmp_path, figures
):
    """OOM-like: SIGKILL to the runner (the container's process), and to the Work's own process."""
    core = client.CoreV1Api(kube)
    operator_process(buckets_process.url, **buckets_process.operator_env)
    runner = apply_hanging(works, tmp_path, "oom-runner")
    child = apply_hanging(works, tmp_path, "oom-work")
    cluster.wait_for(
        lambda: hung(runner.marker) and hung(child.marker),
        timeout=120,
        message="both Works running",
    )
    os.kill(runner_pid(cluster, first_pod(core, namespace, "oom-runner")), signal.SIGKILL)
    os.kill(hung(child.marker), signal.SIGKILL)
    figures["faults injected"] += 2

    settled = settle(works, ["oom-runner", "oom-work"])
    for planned in (runner, child):
        status = settled[planned.name]["status"]
        assert (status["phase"], status["attempt"]) == ("success", 2), status
        first = status["history"][0]
        assert first["reason"] == "Killed", first
        assert "killed by SIGKILL (exit code 137)" in first["message"], first
        assert runs(planned.marker) == [1, 2]
        stored = buckets_record(buckets_process.url, status["bucketsId"])
        assert (stored["status"], stored["attempt"]) == ("success", 2)
    assert (
        "the runner was killed by SIGKILL"
        in settled["oom-runner"]["status"]["history"][0]["message"]
    )
    assert "command `python3 -c" in settled["oom-work"]["status"]["history"][0]["message"]
    result = audit(
        [runner, child], works, core, namespace, buckets_process.url, "nodefaults",
    )  # fmt: skip
    result.record(figures)
    assert not result.problems(), result.problems()


def test_a_job_or_pod_deleted_behind_the_operators_back_is_a_failed_attempt_then_a_retry(
    cluster, operator_process, works, buckets_process, kube, namespace, tmp_path, figures
):
    core, batch = client.CoreV1Api(kube), client.BatchV1Api(kube)
    operator_process(buckets_process.url, **buckets_process.operator_env)
    job_gone = apply_hanging(works, tmp_path, "job-gone")
    pod_gone = apply_hanging(works, tmp_path, "pod-gone")
    cluster.wait_for(
        lambda: hung(job_gone.marker) and hung(pod_gone.marker),
        timeout=120,
        message="both Works running",
    )
    batch.delete_namespaced_job("job-gone-a1", namespace, propagation_policy="Background")
    core.delete_namespaced_pod(first_pod(core, namespace, "pod-gone").metadata.name, namespace)
    figures["faults injected"] += 2

    settled = settle(works, ["job-gone", "pod-gone"])
    for planned in (job_gone, pod_gone):
        status = settled[planned.name]["status"]
        assert (status["phase"], status["attempt"]) == ("success", 2), status
        assert [h["attempt"] for h in status["history"]] == [1, 2]
        assert runs(planned.marker) == [1, 2], "an attempt ran twice, or not at all"
        stored = buckets_record(buckets_process.url, status["bucketsId"])
        assert (stored["status"], stored["attempt"]) == ("success", 2)
    first = settled["job-gone"]["status"]["history"][0]
    assert first["reason"] == "JobDeleted", first
    assert "job-gone-a1 disappeared" in first["message"]
    first = settled["pod-gone"]["status"]["history"][0]
    assert first["reason"] == "PodDeleted", first
    assert first["message"].startswith("the pod of attempt 1 was deleted before it finished")
    assert sorted(job.metadata.name for job in works.jobs("job-gone")) == ["job-gone-a2"]
    assert sorted(job.metadata.name for job in works.jobs("pod-gone")) == [
        "pod-gone-a1",
        "pod-gone-a2",
    ]
    figures["works checked"] += 2


def test_works_run_to_the_end_across_an_apiserver_restart(
    cluster, operator_process, works, buckets_process, kube, namespace, tmp_path, figures
):
    """The operator's watches, the Job controller and the kubelet all recover by themselves."""
    operator = operator_process(buckets_process.url, **buckets_process.operator_env)
    planned: list[Planned] = []
    for number, kind in enumerate(["slow", "slow", "flaky", "function"]):
        name = f"before-{number}-{kind}"
        marker = tmp_path / name
        works.apply(name, work_spec("apirestart", KINDS[kind], marker, seconds=6))
        planned.append(Planned(name, KINDS[kind], marker))
    works.wait_phase("before-0-slow", "running", timeout=120)
    cluster.restart("kube-apiserver", hard=True, downtime=DOWNTIME)
    figures["faults injected"] += 1
    assert operator.process.poll() is None, "the operator exited when the apiserver went away"
    for number, kind in enumerate(["ok", "bad"]):
        name = f"after-{number}-{kind}"
        marker = tmp_path / name
        cluster.wait_for(
            lambda name=name, kind=kind, marker=marker: works.apply(
                name, work_spec("apirestart", KINDS[kind], marker)
            ),
            timeout=60,
            message="the apiserver accepting Works again",
        )
        planned.append(Planned(name, KINDS[kind], marker))
    settle(works, [item.name for item in planned], timeout=300)
    assert operator.process.poll() is None, operator.log()[-3000:]
    result = audit(
        planned, works, client.CoreV1Api(kube), namespace, buckets_process.url, "apirestart"
    )
    result.record(figures)
    assert not result.problems(), "\n".join(result.problems()) + operator.log()[-3000:]
