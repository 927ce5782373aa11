"""Conformance of the process kubelet: real Jobs on the real control plane reach the outcomes a
real node would give them - success, retries, deadlines, env from Secrets, kills on deletion,
termination messages."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from fixtures.cluster import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

PYTHON = sys.executable


def job_manifest(
    name: str,
    command: list[str],
    *,
    backoff_limit: int = 0,
    active_deadline: int | None = None,
    restart_policy: str = "Never",
    **container: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "backoffLimit": backoff_limit,
        "template": {
            "spec": {
                "restartPolicy": restart_policy,
                "terminationGracePeriodSeconds": 5,
                "containers": [
                    {"name": "main", "image": "unused", "command": command, **container}
                ],
            }
        },
    }
    if active_deadline is not None:
        spec["activeDeadlineSeconds"] = active_deadline
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


def pod_manifest(name: str, command: list[str], **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "main", "image": "unused", "command": command, **container}],
        },
    }


def wait_for_job(
    cluster: Cluster, kube: client.ApiClient, namespace: str, name: str, wanted: str, timeout: float
) -> client.V1Job:
    """Wait for condition ``wanted`` (Complete or Failed) and fail early on the other one."""
    batch = client.BatchV1Api(kube)
    other = "Failed" if wanted == "Complete" else "Complete"

    def finished() -> client.V1Job | None:
        job = batch.read_namespaced_job_status(name, namespace)
        for condition in job.status.conditions or []:
            if condition.status != "True":
                continue
            if condition.type == wanted:
                return job
            if condition.type == other:
                why = f"{condition.reason}: {condition.message}"
                pytest.fail(f"job {name} ended {other}, not {wanted}: {why}")
        return None

    return cluster.wait_for(finished, timeout=timeout, message=f"job {name} to be {wanted}")


def job_condition(job: client.V1Job, kind: str) -> client.V1JobCondition:
    return next(c for c in job.status.conditions if c.type == kind and c.status == "True")


def wait_for_pid(cluster: Cluster, pid_file: Path) -> int:
    text = cluster.wait_for(
        lambda: pid_file.exists() and pid_file.read_text().strip(),
        timeout=30,
        message=f"{pid_file}",
    )
    return int(text)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def script(text: str) -> list[str]:
    return [PYTHON, "-c", textwrap.dedent(text)]


def test_job_whose_command_exits_zero_completes(
    cluster: Cluster, kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    out = tmp_path / "ran"
    job = job_manifest("ok", ["sh", "-c", f"echo ran > {out}"])
    client.BatchV1Api(kube).create_namespaced_job(namespace, job)

    done = wait_for_job(cluster, kube, namespace, "ok", "Complete", timeout=60)

    assert done.status.succeeded == 1
    assert not done.status.failed
    assert out.read_text() == "ran\n"
    pod = (
        client.CoreV1Api(kube).list_namespaced_pod(namespace, label_selector="job-name=ok").items[0]
    )
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert terminated.started_at is not None and terminated.finished_at is not None
    ready = next(c for c in pod.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "PodCompleted")


def test_job_with_backoff_limit_two_completes_after_two_failed_pods(
    cluster: Cluster, kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    counter = tmp_path / "attempts"
    command = script(f"""
        import pathlib, sys
        counter = pathlib.Path({str(counter)!r})
        attempt = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(attempt))
        sys.exit(0 if attempt >= 3 else 1)
    """)
    client.BatchV1Api(kube).create_namespaced_job(
        namespace, job_manifest("flaky", command, backoff_limit=2)
    )

    done = wait_for_job(cluster, kube, namespace, "flaky", "Complete", timeout=120)

    assert done.status.failed == 2
    assert done.status.succeeded == 1
    assert counter.read_text() == "3"


def test_job_active_deadline_fails_it_with_deadline_exceeded_and_kills_the_process(
    cluster: Cluster, kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    job = job_manifest(
        "slow", ["sh", "-c", f"echo $$$$ > {pid_file}; exec sleep 60"], active_deadline=3
    )
    client.BatchV1Api(kube).create_namespaced_job(namespace, job)
    pid = wait_for_pid(cluster, pid_file)

    failed = wait_for_job(cluster, kube, namespace, "slow", "Failed", timeout=60)

    assert job_condition(failed, "Failed").reason == "DeadlineExceeded"
    cluster.wait_for(
        lambda: not process_exists(pid), timeout=10, message=f"process {pid} to be gone"
    )


def test_pod_active_deadline_fails_the_pod_with_deadline_exceeded(
    cluster: Cluster, kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    pod = pod_manifest("deadline", ["sleep", "60"])
    pod["spec"]["activeDeadlineSeconds"] = 2
    core.create_namespaced_pod(namespace, pod)

    failed = cluster.wait_for(
        lambda: (
            (p := core.read_namespaced_pod("deadline", namespace)).status.phase == "Failed" and p
        ),
        timeout=30,
        message="pod phase Failed",
    )

    assert failed.status.reason == "DeadlineExceeded"
    assert "deadline" in failed.status.message
    terminated = failed.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 143  # SIGTERM


def test_secret_sourced_env_var_reaches_the_process(
    cluster: Cluster, kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    out = tmp_path / "token"
    core = client.CoreV1Api(kube)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cr3t"}}
    )
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]
    job = job_manifest("secret-env", ["sh", "-c", f'printf %s "$TOKEN" > {out}'], env=env)
    client.BatchV1Api(kube).create_namespaced_job(namespace, job)

    wait_for_job(cluster, kube, namespace, "secret-env", "Complete", timeout=60)

    assert out.read_text() == "s3cr3t"


def test_env_sources_and_expansion_resolve_like_the_kubelet(
    cluster: Cluster, kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    out = tmp_path / "env"
    core = client.CoreV1Api(kube)
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "settings"}, "data": {"mode": "fast", "level": "3"}}
    )
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "more"}, "stringData": {"key": "v"}}
    )
    env = [
        {"name": "GREETING", "value": "hello"},
        {"name": "EXPANDED", "value": "$(GREETING)-$(CFG_mode)-$$(GREETING)-$(UNKNOWN)"},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {
            "name": "ABSENT",
            "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
        },
    ]
    env_from = [
        {"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
        {"secretRef": {"name": "more"}},
    ]
    names = ["GREETING", "EXPANDED", "MODE", "TEAM", "POD", "CFG_level", "key", "ABSENT"]
    command = script(f"""
        import json, os
        names = {names!r}
        with open({str(out)!r}, "w") as f:
            json.dump({{n: os.environ.get(n) for n in names}} | {{"cwd": os.getcwd()}}, f)
    """)
    pod = pod_manifest(
        "envs", [*command, "$(MODE)"], env=env, envFrom=env_from, workingDir=str(tmp_path)
    )
    pod["metadata"]["labels"] = {"team": "blue"}
    core.create_namespaced_pod(namespace, pod)

    cluster.wait_for(
        lambda: core.read_namespaced_pod("envs", namespace).status.phase == "Succeeded",
        timeout=60,
        message="pod envs to succeed",
    )

    import json

    seen = json.loads(out.read_text())
    assert seen == {
        "GREETING": "hello",
        "EXPANDED": "hello-fast-$(GREETING)-$(UNKNOWN)",
        "MODE": "fast",
        "TEAM": "blue",
        "POD": "envs",
        "CFG_level": "3",
        "key": "v",
        "ABSENT": None,
        "cwd": str(tmp_path),
    }


def test_missing_secret_keeps_pod_pending_with_create_container_config_error_until_it_exists(
    cluster: Cluster, kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]
    core.create_namespaced_pod(namespace, pod_manifest("waits", ["true"], env=env))

    def waiting() -> client.V1ContainerStateWaiting | None:
        pod = core.read_namespaced_pod("waits", namespace)
        statuses = pod.status.container_statuses or []
        state = statuses[0].state.waiting if statuses else None
        return state if state and state.reason == "CreateContainerConfigError" else None

    state = cluster.wait_for(waiting, timeout=30, message="CreateContainerConfigError")

    assert state.message == 'secret "later" not found'
    time.sleep(2)
    assert core.read_namespaced_pod("waits", namespace).status.phase == "Pending"
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "later"}, "stringData": {"token": "x"}}
    )
    cluster.wait_for(
        lambda: core.read_namespaced_pod("waits", namespace).status.phase == "Succeeded",
        timeout=30,
        message="the pod to run once the secret exists",
    )


@pytest.mark.parametrize("propagation", ["Background", "Foreground"])
def test_deleting_a_running_job_kills_its_process_and_removes_its_pod(
    cluster: Cluster, kube: client.ApiClient, namespace: str, tmp_path: Path, propagation: str
) -> None:
    pid_file = tmp_path / "pid"
    batch, core = client.BatchV1Api(kube), client.CoreV1Api(kube)
    batch.create_namespaced_job(
        namespace, job_manifest("doomed", ["sh", "-c", f"echo $$$$ > {pid_file}; exec sleep 300"])
    )
    pid = wait_for_pid(cluster, pid_file)
    assert process_exists(pid)

    batch.delete_namespaced_job("doomed", namespace, propagation_policy=propagation)

    cluster.wait_for(
        lambda: not process_exists(pid), timeout=30, message=f"process {pid} to be killed"
    )
    cluster.wait_for(
        lambda: not core.list_namespaced_pod(namespace, label_selector="job-name=doomed").items,
        timeout=60,
        message="the job's pod to be deleted",
    )


def test_deleting_a_finished_job_removes_its_terminal_pod(
    cluster: Cluster, kube: client.ApiClient, namespace: str
) -> None:
    batch, core = client.BatchV1Api(kube), client.CoreV1Api(kube)
    batch.create_namespaced_job(namespace, job_manifest("finished", ["true"]))
    wait_for_job(cluster, kube, namespace, "finished", "Complete", timeout=60)

    batch.delete_namespaced_job("finished", namespace, propagation_policy="Background")

    cluster.wait_for(
        lambda: not core.list_namespaced_pod(namespace, label_selector="job-name=finished").items,
        timeout=30,
        message="the finished job's pod to be deleted",
    )


def test_termination_message_written_by_the_process_is_reported(
    cluster: Cluster, kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(
        namespace,
        pod_manifest("default-path", ["sh", "-c", "printf 'summary: ok' > /dev/termination-log"]),
    )
    core.create_namespaced_pod(
        namespace,
        pod_manifest(
            "custom-path",
            ["sh", "-c", "printf custom > /var/run/result/message; exit 3"],
            terminationMessagePath="/var/run/result/message",
        ),
    )
    core.create_namespaced_pod(
        namespace,
        pod_manifest(
            "from-logs",
            ["sh", "-c", "echo first; echo last words; exit 1"],
            terminationMessagePolicy="FallbackToLogsOnError",
        ),
    )

    def terminated(name: str) -> client.V1ContainerStateTerminated | None:
        statuses = core.read_namespaced_pod(name, namespace).status.container_statuses or []
        return statuses[0].state.terminated if statuses else None

    default = cluster.wait_for(
        lambda: terminated("default-path"), timeout=30, message="default-path to end"
    )
    custom = cluster.wait_for(
        lambda: terminated("custom-path"), timeout=30, message="custom-path to end"
    )
    logs = cluster.wait_for(lambda: terminated("from-logs"), timeout=30, message="from-logs to end")

    assert (default.exit_code, default.message) == (0, "summary: ok")
    assert (custom.exit_code, custom.reason, custom.message) == (3, "Error", "custom")
    assert logs.message == "first\nlast words\n"
    assert (
        not Path("/dev/termination-log").exists()
        or Path("/dev/termination-log").read_text() != "summary: ok"
    )


def test_on_failure_restarts_the_container_in_place_and_counts_restarts(
    cluster: Cluster, kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    marker = tmp_path / "failed-once"
    command = ["sh", "-c", f"if [ -e {marker} ]; then exit 0; fi; touch {marker}; exit 7"]
    job = job_manifest("retry-in-place", command, restart_policy="OnFailure", backoff_limit=3)
    client.BatchV1Api(kube).create_namespaced_job(namespace, job)

    wait_for_job(cluster, kube, namespace, "retry-in-place", "Complete", timeout=60)

    pods = (
        client.CoreV1Api(kube)
        .list_namespaced_pod(namespace, label_selector="job-name=retry-in-place")
        .items
    )
    assert len(pods) == 1
    status = pods[0].status.container_statuses[0]
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 7


def test_container_logs_are_served_through_the_apiserver(
    cluster: Cluster, kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(
        namespace, pod_manifest("talks", ["sh", "-c", "echo one; echo two >&2"])
    )
    cluster.wait_for(
        lambda: core.read_namespaced_pod("talks", namespace).status.phase == "Succeeded",
        timeout=30,
        message="pod talks to succeed",
    )

    logs = core.read_namespaced_pod_log("talks", namespace, container="main")

    assert logs == "one\ntwo\n"


def test_container_without_command_waits_with_create_container_error(
    cluster: Cluster, kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    pod = pod_manifest("no-command", [])
    del pod["spec"]["containers"][0]["command"]
    core.create_namespaced_pod(namespace, pod)

    def reason() -> str | None:
        statuses = core.read_namespaced_pod("no-command", namespace).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting.reason if waiting else None

    assert (
        cluster.wait_for(
            lambda: reason() == "CreateContainerError" and reason(),
            timeout=30,
            message="CreateContainerError",
        )
        == "CreateContainerError"
    )
