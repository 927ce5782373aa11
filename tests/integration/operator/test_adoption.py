"""The operator adopts only its own Work's Jobs: a Job of the same name that another owns is left.

A Work deleted and made again under the same name gets a new uid, but the
Job names of its attempts are the same. If the Job of the earlier Work has
not been collected yet, creating the new Work's Job answers 409; adopting
that Job would report another Work's run as this one's. Real parts: the
local control plane (its garbage collector deletes the old Job; a finalizer
of the test's holds it while the test looks), a buckets server, the
operator as a process.
"""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from workflow.controller import resource

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

HOLD = "test.workflow.dev/hold"


def old_job(name: str, owner_uid: str) -> dict:
    """A Job as the earlier Work's attempt 1 (suspended: it starts no pod), held by a finalizer."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{name}-a1",
            "finalizers": [HOLD],
            "ownerReferences": [
                {
                    "apiVersion": resource.API_VERSION,
                    "kind": resource.KIND,
                    "name": name,
                    "uid": owner_uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "suspend": True,
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "work", "image": "old", "command": ["true"]}],
                }
            },
        },
    }


def controller_uid(job: client.V1Job) -> str | None:
    return next((ref.uid for ref in job.metadata.owner_references or [] if ref.controller), None)


def test_a_recreated_work_never_adopts_the_job_of_the_work_it_replaces(
    operator_process, works, buckets_process, kube, namespace
) -> None:
    spec = {
        "pipeline": "adoption",
        "site": "local",
        "user": "tester",
        "timeout": 60,
        "retries": 0,
        "command": ["python3", "-c", "print('the new one')"],
    }
    batch = client.BatchV1Api(kube)
    earlier = works.apply("again", spec)["metadata"]["uid"]
    batch.create_namespaced_job(namespace, old_job("again", earlier))
    works.delete("again")
    works.wait("again", lambda w: not w, timeout=30, what="deletion of the earlier Work")
    later = works.apply("again", spec)["metadata"]["uid"]
    assert later != earlier

    operator_process(buckets_process.url, **buckets_process.operator_env)
    waiting = works.wait(
        "again",
        lambda w: (w.get("status") or {}).get("reason") == "JobNameTaken",
        timeout=60,
        what="the reason JobNameTaken",
    )
    assert earlier in waiting["status"]["message"], waiting["status"]
    time.sleep(4)  # a few looks later it still waits, neither adopted nor failed
    status = works.get("again")["status"]
    assert (status["phase"], status["attempt"], status.get("history", [])) == ("queued", 0, [])
    assert controller_uid(batch.read_namespaced_job("again-a1", namespace)) == earlier

    # The earlier Job goes (the garbage collector deleted it; the test's finalizer held it).
    batch.patch_namespaced_job("again-a1", namespace, {"metadata": {"finalizers": None}})
    work = works.wait_phase("again", "success", "failure", timeout=120)
    assert work["status"]["phase"] == "success", work["status"]
    assert "the new one" in work["status"]["results"]["stdout"]
    assert controller_uid(batch.read_namespaced_job("again-a1", namespace)) == later
