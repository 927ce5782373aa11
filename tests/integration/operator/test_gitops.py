"""GitOps on Works: re-applying is a no-op, a started spec is frozen, runId re-runs, TTL expires.

What Argo CD or Flux do to a Work is `kubectl apply` of the same manifest,
again and again, sometimes with a change. These tests do exactly that against
the real apiserver (whose CEL rules guard the spec) with the operator running.
"""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def manifest(name: str, namespace: str, **spec) -> str:
    body = {
        "apiVersion": "workflow.dev/v1alpha1",
        "kind": "Work",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "pipeline": "gitops",
            "site": "local",
            "user": "tester",
            "timeout": 60,
            "retries": 0,
            "command": ["python3", "-c", "print('once')"],
            **spec,
        },
    }
    return yaml.safe_dump(body)


def apply(cluster, text: str, *flags: str):
    return cluster.kubectl("apply", *flags, "-f", "-", input=text, check=False)


def set_phase(kube, namespace: str, name: str, phase: str) -> None:
    """Write a status as the operator would (for the rules that read it; no operator runs)."""
    from kubernetes import client

    client.CustomObjectsApi(kube).patch_namespaced_custom_object_status(
        "workflow.dev", "v1alpha1", namespace, "works", name, {"status": {"phase": phase}}
    )


@pytest.mark.parametrize("mode", [[], ["--server-side"]], ids=["client-side", "server-side"])
def test_applying_an_unchanged_manifest_again_starts_nothing(
    cluster, operator_process, works, buckets_process, namespace, mode
):
    operator_process(buckets_process.url, **buckets_process.operator_env)
    text = manifest("again", namespace)
    assert apply(cluster, text, *mode).returncode == 0
    first = works.wait_phase("again", "success", "failure")
    assert first["status"]["phase"] == "success", first["status"]

    for _ in range(2):
        result = apply(cluster, text, *mode)
        assert result.returncode == 0, result.stderr
        assert "configured" not in result.stdout, result.stdout
    time.sleep(6)  # past the operator's resync (5 s in these tests)

    work = works.get("again")
    assert work["metadata"]["generation"] == first["metadata"]["generation"]
    assert work["status"]["attempt"] == 1 and len(work["status"]["history"]) == 1
    assert [job.metadata.name for job in works.jobs("again")] == ["again-a1"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"command": ["python3", "-c", "print('changed')"]}, "spec.command"),
        ({"priority": 5}, "spec.priority"),
        ({"tags": ["new"]}, "spec.tags"),
        (
            {
                "command": None,
                "function": "workflow.examples.functions.mean",
                "parameters": {"values": [1]},
            },
            "spec.function",
        ),
        ({"image": "other:1"}, "spec.image"),
        ({"env": [{"name": "A", "value": "b"}]}, "spec.env"),
    ],
)
def test_the_spec_of_a_started_work_cannot_change(cluster, kube, works, namespace, change, field):
    assert apply(cluster, manifest("frozen", namespace)).returncode == 0
    set_phase(kube, namespace, "frozen", "running")
    spec = {key: value for key, value in change.items() if value is not None}
    text = manifest("frozen", namespace, **spec)
    if change.get("command", "") is None:
        body = yaml.safe_load(text)
        del body["spec"]["command"]
        text = yaml.safe_dump(body)
    result = apply(cluster, text)
    assert result.returncode != 0, f"accepted a change of {field} on a running Work"
    assert f"{field}: Forbidden: {field} cannot change once the Work has started" in result.stderr


def test_only_run_id_and_ttl_may_change_and_run_id_not_while_running(
    cluster, kube, works, namespace
):
    assert apply(cluster, manifest("mutable", namespace)).returncode == 0
    # Before the operator picks it up (phase created), anything may change.
    assert apply(cluster, manifest("mutable", namespace, priority=5)).returncode == 0
    set_phase(kube, namespace, "mutable", "running")
    result = apply(cluster, manifest("mutable", namespace, priority=5, ttlSecondsAfterFinished=600))
    assert result.returncode == 0, result.stderr
    result = apply(cluster, manifest("mutable", namespace, priority=5, runId="now"))
    assert result.returncode != 0
    assert "spec.runId cannot change while the Work is queued or running" in result.stderr
    # Finished: the spec stays frozen, unless a new runId comes with it (a new run of a new spec).
    set_phase(kube, namespace, "mutable", "failure")
    result = apply(cluster, manifest("mutable", namespace, priority=1))
    assert "spec.priority: Forbidden" in result.stderr
    result = apply(cluster, manifest("mutable", namespace, priority=2, runId="fixed"))
    assert result.returncode == 0, result.stderr


def test_a_new_run_id_runs_a_finished_work_again_as_a_new_record(
    cluster, operator_process, works, buckets_process, namespace
):
    operator_process(buckets_process.url, **buckets_process.operator_env)
    assert apply(cluster, manifest("rerun", namespace)).returncode == 0
    first = works.wait_phase("rerun", "success", "failure")
    assert first["status"]["phase"] == "success", first["status"]
    uid = first["metadata"]["uid"]
    assert first["status"]["bucketsId"] == uid

    changed = manifest(
        "rerun", namespace, runId="2026-01-02", command=["python3", "-c", "print('twice')"]
    )
    result = apply(cluster, changed)
    assert result.returncode == 0, result.stderr
    second = works.wait(
        "rerun",
        lambda w: w["status"].get("runId") == "2026-01-02" and w["status"]["phase"] == "success",
        timeout=120,
        what="the re-run's success",
    )
    status = second["status"]
    assert status["attempt"] == 1 and len(status["history"]) == 1
    digest = hashlib.sha256(b"2026-01-02").hexdigest()[:6]
    assert status["job"] == f"rerun-r{digest}-a1"
    assert "twice" in status["results"]["stdout"]
    assert status["bucketsId"] == f"{uid}.2026-01-02"
    assert sorted(job.metadata.name for job in works.jobs("rerun")) == sorted(
        ["rerun-a1", f"rerun-r{digest}-a1"]
    )
    headers = buckets_process.headers
    old = httpx.get(f"{buckets_process.url}/work/{uid}", headers=headers, timeout=10).json()
    new = httpx.get(
        f"{buckets_process.url}/work/{uid}.2026-01-02", headers=headers, timeout=10
    ).json()
    assert old["status"] == new["status"] == "success"
    assert "once" in old["results"]["stdout"] and "twice" in new["results"]["stdout"]


def test_finished_works_are_kept_unless_a_ttl_is_set(
    cluster, operator_process, works, buckets_process, namespace
):
    operator_process(buckets_process.url, **buckets_process.operator_env)
    assert apply(cluster, manifest("kept", namespace)).returncode == 0
    assert apply(cluster, manifest("expires", namespace, ttlSecondsAfterFinished=2)).returncode == 0
    kept = works.wait_phase("kept", "success", "failure")
    works.wait("expires", lambda w: not w, timeout=90, what="deletion 2 s after it finished")
    # A TTL given to a finished Work (it may still change) expires it too.
    assert works.get("kept")["status"]["phase"] == kept["status"]["phase"] == "success"
    result = apply(cluster, manifest("kept", namespace, ttlSecondsAfterFinished=1))
    assert result.returncode == 0, result.stderr
    works.wait("kept", lambda w: not w, timeout=90, what="deletion after the TTL given later")
