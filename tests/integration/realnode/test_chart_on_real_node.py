"""The chart as users install it: `helm install` onto the real node, with the project's image.

The operator and buckets Deployments run as real containers (non-root,
read-only root, their real probes deciding readiness); the Works they run
are real containers from the same image. Then `helm upgrade` to a changed
value and `helm uninstall`, as the chart's README describes them.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx
import pytest
from charting import Helm, find_helm, free_port
from kubernetes import client

from fixtures.cluster import fresh_namespace

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.realnode]

VALUES = Path(__file__).resolve().parents[3] / "hack" / "realnode-values.yaml"
WORK = {"pipeline": "chart", "site": "local", "user": "tester", "timeout": 60, "retries": 0,
        "function": "workflow.examples.functions.add", "parameters": {"a": 2, "b": 3}}  # fmt: skip


@pytest.fixture
def helm(real_cluster) -> Helm:
    found = find_helm()
    assert found, "helm is missing: run hack/ensure-helm.sh"
    return Helm(found, real_cluster.kubeconfig)


@pytest.fixture
def works_namespace(real_cluster, real_kube):
    yield from fresh_namespace(real_cluster, real_kube)


def deployment_ready(kube, namespace: str, name: str) -> bool:
    deployment = client.AppsV1Api(kube).read_namespaced_deployment(name, namespace)
    return (deployment.status.ready_replicas or 0) >= 1 and (
        deployment.status.updated_replicas or 0
    ) >= 1


def chart_pod(kube, namespace: str, component: str) -> client.V1Pod:
    pods = (
        client.CoreV1Api(kube)
        .list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/component={component}")
        .items
    )
    running = [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
    assert running, f"no running {component} pod: {[p.status.phase for p in pods]}"
    return running[0]


def test_helm_install_upgrade_and_uninstall_on_the_real_node(
    helm, real_cluster, real_kube, real_namespace, works_namespace, real_works
):
    buckets_port, health_port = free_port(), free_port()
    api_port = real_cluster.info.ports["apiserver"]
    extra_env = [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
                 {"name": "KUBERNETES_SERVICE_PORT", "value": str(api_port)}]  # fmt: skip
    values = ["-f", str(VALUES),
              "--set", f"buckets.containerPort={buckets_port}",
              "--set", f"operator.healthPort={health_port}",
              "--set", f"operator.bucketsUrl=http://127.0.0.1:{buckets_port}",
              "--set", f"operator.namespaces={{{works_namespace}}}",
              "--set-json", f"operator.extraEnv={json.dumps(extra_env)}"]  # fmt: skip
    started = time.monotonic()
    installed = helm.run(
        "install", "wf", helm.chart, "--namespace", real_namespace, "--take-ownership",
        "--wait", "--timeout", "240s", *values, timeout=300,
    )  # fmt: skip
    assert "STATUS: deployed" in installed.stdout
    print(f"\nhelm install --wait on the real node: {time.monotonic() - started:.1f} s")

    # Ready through their real probes, in real containers, as the chart's non-root user.
    for component in ("operator", "buckets"):
        pod = chart_pod(real_kube, real_namespace, component)
        status = pod.status.container_statuses[0]
        assert status.ready and status.container_id.startswith("containerd://"), status
        container = pod.spec.containers[0]
        assert pod.spec.host_network is True
        assert container.security_context.read_only_root_filesystem is True
        assert pod.spec.security_context.run_as_non_root is True
    buckets_pod = chart_pod(real_kube, real_namespace, "buckets")
    assert buckets_pod.spec.containers[0].readiness_probe.http_get.path == "/healthz"
    assert httpx.get(f"http://127.0.0.1:{buckets_port}/healthz", timeout=5).status_code == 200

    # A Work in the watched namespace runs to success in a real container.
    real_works.namespace = works_namespace
    real_works.apply("sum", WORK)
    work = real_works.wait_phase("sum", "success", "failure", timeout=180)
    assert work["status"]["phase"] == "success", work["status"]
    assert work["status"]["results"]["sum"] == 5
    secret = client.CoreV1Api(real_kube).read_namespaced_secret(
        "wf-workflow-tokens", real_namespace
    )
    token = base64.b64decode(secret.data["operator-token"]).decode()
    stored = httpx.get(
        f"http://127.0.0.1:{buckets_port}/work/{work['status']['bucketsId']}",
        headers={"x-access-token": token},
        timeout=10,
    )
    assert stored.status_code == 200 and stored.json()["results"]["sum"] == 5

    # helm upgrade to a changed value: the operator restarts with it and still runs Works.
    old_operator = chart_pod(real_kube, real_namespace, "operator").metadata.name
    helm.run(
        "upgrade", "wf", helm.chart, "--namespace", real_namespace, "--wait", "--timeout", "240s",
        *values, "--set", "operator.settings.backoffSeconds=2", timeout=300,
    )  # fmt: skip
    real_cluster.wait_for(
        lambda: chart_pod(real_kube, real_namespace, "operator").metadata.name != old_operator,
        timeout=120,
        message="the upgraded operator pod",
    )
    new_operator = chart_pod(real_kube, real_namespace, "operator")
    env = {e.name: e.value for e in new_operator.spec.containers[0].env}
    assert env["WORKFLOW_OPERATOR_BACKOFF_SECONDS"] == "2"
    real_works.apply("sum-after-upgrade", WORK)
    after = real_works.wait_phase("sum-after-upgrade", "success", "failure", timeout=180)
    assert after["status"]["phase"] == "success", after["status"]

    # helm uninstall: the chart's pods go; the CRD and the Works stay (crds.keep).
    helm.run("uninstall", "wf", "--namespace", real_namespace, "--wait", timeout=300)
    real_cluster.wait_for(
        lambda: (
            not client.CoreV1Api(real_kube)
            .list_namespaced_pod(real_namespace, label_selector="app.kubernetes.io/instance=wf")
            .items
        ),
        timeout=120,
        message="the chart's pods to go",
    )
    assert real_works.get("sum")["status"]["phase"] == "success"
