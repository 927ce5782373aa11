"""Works run in real containers from the project's image, on a real kubelet with containerd.

What the process kubelet cannot show is decided here by the real node: the
image and its user, the read-only root and the ``/tmp`` emptyDir, seccomp,
the memory limit and ``OOMKilled``, the kubelet's ``$(VAR)`` expansion,
the image pull policy, and the stop of a container whose Work is deleted.
"""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from kubernetes import client
from realnode_helpers import IMAGE_UID, node_containers

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.realnode]


def spec(**extra):
    return {"pipeline": "realnode", "site": "local", "user": "tester", "timeout": 60, **extra}


def record(buckets, work) -> dict:
    response = httpx.get(
        f"{buckets.url}/work/{work['status']['bucketsId']}", headers=buckets.headers, timeout=10
    )
    response.raise_for_status()
    return response.json()


def finished(works, name, timeout=180):
    return works.wait_phase(name, "success", "failure", timeout=timeout)["status"]


def pod_of(kube, namespace, work_name) -> client.V1Pod:
    pods = (
        client.CoreV1Api(kube)
        .list_namespaced_pod(namespace, label_selector=f"workflow.dev/work={work_name}")
        .items
    )
    assert pods, f"no pod of Work {work_name}"
    return pods[-1]


def test_a_command_and_a_function_work_succeed_in_containers_with_results_in_both_places(
    real_operator, real_works, buckets_process, real_kube, real_namespace
):
    real_operator(buckets_process.url)
    real_works.apply("echo", spec(command=["sh", "-c", "echo hello from $(hostname)"], retries=0))
    real_works.apply(
        "mean",
        spec(function="workflow.examples.functions.mean", parameters={"values": [1, 2, 3, 6]}),
    )
    echo, mean = finished(real_works, "echo"), finished(real_works, "mean")
    assert echo["phase"] == "success", echo
    assert "hello from" in echo["results"]["stdout"]
    assert echo["history"][0]["exitCode"] == 0
    assert mean["phase"] == "success", mean
    assert mean["results"]["mean"] == 3
    assert record(buckets_process, real_works.get("echo"))["status"] == "success"
    assert record(buckets_process, real_works.get("mean"))["results"]["mean"] == 3
    # A real container ran it: the pod's container has an image id and a containerd id.
    status = pod_of(real_kube, real_namespace, "mean").status.container_statuses[0]
    assert status.container_id.startswith("containerd://"), status.container_id
    assert status.image_id, "a real kubelet reports the image it ran"


def test_inside_a_work_container_the_user_is_not_root_root_is_read_only_and_tmp_is_writable(
    real_operator, real_works, buckets_process
):
    real_operator(buckets_process.url)
    probe = (
        "id -u; grep '^Seccomp:' /proc/self/status; "
        "(touch /probe 2>/dev/null && echo root-writable) || echo root-read-only; "
        "(touch /tmp/probe && echo tmp-writable) || echo tmp-read-only"
    )
    real_works.apply("inside", spec(command=["sh", "-c", probe], retries=0))
    status = finished(real_works, "inside")
    assert status["phase"] == "success", status
    lines = status["results"]["stdout"].split()
    assert lines[0] == str(IMAGE_UID)
    assert "Seccomp:" in lines and lines[lines.index("Seccomp:") + 1] == "2"  # filter mode
    assert "root-read-only" in lines and "tmp-writable" in lines


def test_parameters_with_dollar_signs_reach_the_function_byte_exact(
    real_operator, real_works, buckets_process
):
    real_operator(buckets_process.url)
    parameters = {"a": "$$", "b": "$(HOME)", "c": "$(WORKFLOW_WORK)", "d": "x$$(HOME)$"}
    real_works.apply(
        "dollars",
        spec(function="workflow.examples.functions.echo", parameters=parameters, retries=0,
             env=[{"name": "LITERAL", "value": "$(HOME) costs $$5"}]),
    )  # fmt: skip
    real_works.apply(
        "dollar-env",
        spec(command=["sh", "-c", 'printf %s "$LITERAL"'], retries=0,
             env=[{"name": "LITERAL", "value": "$(HOME) costs $$5"}]),
    )  # fmt: skip
    status = finished(real_works, "dollars")
    assert status["phase"] == "success", status
    assert status["results"]["parameters"] == parameters
    assert record(buckets_process, real_works.get("dollars"))["results"]["parameters"] == parameters
    env_status = finished(real_works, "dollar-env")
    assert env_status["results"]["stdout"] == "$(HOME) costs $$5"


def test_every_attempt_timing_out_fails_the_work_with_deadline_exceeded(
    real_operator, real_works, buckets_process
):
    real_operator(buckets_process.url)
    real_works.apply("slow", spec(command=["sleep", "120"], timeout=4, retries=1, backoff=1))
    status = finished(real_works, "slow", timeout=240)
    assert status["phase"] == "failure"
    assert [h["reason"] for h in status["history"]] == ["DeadlineExceeded", "DeadlineExceeded"]
    assert record(buckets_process, real_works.get("slow"))["status"] == "failure"


def test_a_work_past_its_memory_limit_is_oom_killed_and_retried(
    real_operator, real_works, buckets_process
):
    real_operator(buckets_process.url)
    hog = "import time; b = bytearray(512 * 1024 * 1024); time.sleep(5)"
    real_works.apply(
        "hog",
        spec(command=["python3", "-c", hog], retries=1, backoff=1,
             resources={"limits": {"memory": "96Mi"}, "requests": {"memory": "96Mi"}}),
    )  # fmt: skip
    status = finished(real_works, "hog", timeout=240)
    assert status["phase"] == "failure", status
    assert [h["reason"] for h in status["history"]] == ["OOMKilled", "OOMKilled"], status
    assert sorted(job.metadata.name for job in real_works.jobs("hog")) == ["hog-a1", "hog-a2"]


def test_deleting_a_running_work_stops_its_container(
    real_operator, real_works, buckets_process, real_cluster, real_namespace
):
    real_operator(buckets_process.url)
    real_works.apply("doomed", spec(command=["sleep", "300"], retries=0))
    work = real_works.wait_phase("doomed", "running", timeout=120)
    real_cluster.wait_for(
        lambda: node_containers(real_cluster, real_namespace),
        timeout=60,
        message="the Work's container on the node",
    )
    real_works.delete("doomed")
    real_works.wait("doomed", lambda w: not w, timeout=90, what="deletion")
    real_cluster.wait_for(
        lambda: not node_containers(real_cluster, real_namespace),
        timeout=90,
        message="containerd to remove the deleted Work's containers",
    )
    assert record(buckets_process, work)["status"] == "failure"


def test_the_token_reaches_the_pod_from_a_secret_and_no_manifest_holds_it(
    real_operator, real_works, secured_buckets_process, real_kube, real_namespace
):
    token = secured_buckets_process.token
    core = client.CoreV1Api(real_kube)
    core.create_namespaced_secret(
        real_namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="work-token"),
                        data={"token": base64.b64encode(token.encode()).decode()}),
    )  # fmt: skip
    process = real_operator(secured_buckets_process.url, **secured_buckets_process.operator_env)
    real_works.apply(
        "secured",
        spec(function="workflow.examples.functions.add", parameters={"a": 1, "b": 2},
             retries=0, tokenSecretRef={"name": "work-token", "key": "token"}),
    )  # fmt: skip
    status = finished(real_works, "secured")
    assert status["phase"] == "success", status
    stored = record(secured_buckets_process, real_works.get("secured"))
    assert stored["status"] == "success" and stored["results"]["sum"] == 3
    pod = pod_of(real_kube, real_namespace, "secured")
    refs = [e.value_from.secret_key_ref for e in pod.spec.containers[0].env if e.value_from]
    assert any(ref and ref.name == "work-token" for ref in refs)
    seen = [
        json.dumps(real_works.get("secured")),
        json.dumps([real_kube.sanitize_for_serialization(j) for j in real_works.jobs("secured")]),
        json.dumps(real_kube.sanitize_for_serialization(core.list_namespaced_pod(real_namespace))),
        json.dumps(
            real_kube.sanitize_for_serialization(core.list_namespaced_event(real_namespace))
        ),
        process.log(),
    ]
    for text in seen:
        assert token not in text


def test_a_work_whose_image_is_not_on_the_node_fails_its_attempt_saying_so(
    real_operator, real_works, buckets_process
):
    real_operator(buckets_process.url, WORKFLOW_OPERATOR_PENDING_TIMEOUT_SECONDS="5")
    started = time.monotonic()
    real_works.apply(
        "noimage", spec(command=["true"], retries=0, image="localhost/absent:never-built")
    )
    status = finished(real_works, "noimage", timeout=120)
    assert status["phase"] == "failure", status
    assert status["reason"] == "ImagePullFailed", status
    assert "ErrImageNeverPull" in status["history"][0]["message"] or "image" in (
        status["history"][0]["message"].lower()
    )
    assert time.monotonic() - started < 90
