"""`helm install` onto the real control plane, the operator running with only the chart's RBAC.

The chart's buckets and operator are started from their installed
Deployments (see conftest: command and kubelet-resolved environment, as local
processes), the operator authenticating as the chart's ServiceAccount. A Work
reaching success proves the granted rules are enough; the refusals prove
they are no more than the operator needs. Then upgrade and uninstall.
"""

from __future__ import annotations

import base64
import json
import subprocess

import httpx
import pytest
from charting import uninstall
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from workflow.controller import resource

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

WORK = {
    "pipeline": "chart",
    "site": "local",
    "user": "tester",
    "timeout": 60,
    "retries": 0,
    "command": [
        "python3",
        "-c",
        # More output than a termination message holds: only the runner's own record in
        # buckets, made with the token minted for the attempt, can keep it.
        "import os; print('token' if os.environ.get('WORKFLOW_HTTP_TOKEN') else 'none'); "
        "print('x' * 8000)",
    ],
}


def install(helm, namespace: str, release: str, *values: str) -> subprocess.CompletedProcess[str]:
    # --take-ownership: other tests of the session applied crds/work.yaml without Helm.
    return helm.run(
        "install", release, helm.chart, "--namespace", namespace, "--take-ownership", *values
    )


def secret_data(kube, namespace: str, name: str) -> dict[str, str]:
    secret = client.CoreV1Api(kube).read_namespaced_secret(name, namespace)
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def released_objects(cluster, namespace: str, release: str) -> list[str]:
    """Every object, namespaced or not, that carries the release's instance label."""
    kinds = cluster.kubectl("api-resources", "--verbs=list", "-o", "name").stdout.split()
    kinds = [kind for kind in kinds if kind not in ("events", "events.events.k8s.io")]
    found = cluster.kubectl(
        "get",
        ",".join(kinds),
        "--all-namespaces",
        "-o",
        "json",
        "-l",
        f"app.kubernetes.io/instance={release}",
    )
    items = json.loads(found.stdout)["items"]
    return sorted(
        f"{item['kind']}/{item['metadata'].get('namespace', '')}/{item['metadata']['name']}"
        for item in items
    )


@pytest.mark.parametrize("scope", ["namespaced", "cluster-wide"])
def test_installed_chart_runs_a_work_to_success_with_only_its_own_rbac(
    helm, cluster, kube, namespace, release, chart_pods, works, scope
):
    values = ["--set", "operator.settings.backoffSeconds=1",
              "--set", "operator.settings.resyncSeconds=5",
              "--set", f"rbac.clusterWide={scope == 'cluster-wide'}"]  # fmt: skip
    result = install(helm, namespace, release, *values)
    assert "STATUS: deployed" in result.stdout
    tokens = secret_data(kube, namespace, f"{release}-workflow-tokens")
    assert tokens["works-token"] not in result.stdout + result.stderr, "NOTES printed a token"
    assert tokens["operator-token"] not in result.stdout + result.stderr, "NOTES printed a token"
    if scope == "namespaced":
        # Work pods' token, copied into the watched namespace under the operator's default name.
        assert secret_data(kube, namespace, "workflow-buckets-token") == {
            "token": tokens["works-token"]
        }
    else:
        # Watching every namespace, the chart cannot know them: as the README says, create it.
        cluster.kubectl("create", "secret", "generic", "workflow-buckets-token", "-n", namespace,
                        f"--from-literal=token={tokens['works-token']}")  # fmt: skip

    _buckets, url = chart_pods.buckets(namespace, release)
    operator, health = chart_pods.operator(namespace, release, url)
    works.apply("through-the-chart", {**WORK, "ttlSecondsAfterFinished": 2})
    work = works.wait_phase("through-the-chart", "success", "failure", timeout=120)
    assert work["status"]["phase"] == "success", (work["status"], operator.log()[-4000:])
    # The runner recorded the 8 kB of output with the token minted for the attempt
    # (signed with the chart's key, which buckets checks), and kept it from the command.
    assert work["status"].get("resultsTruncated") is None, work["status"]
    assert work["status"]["results"]["stdout"].splitlines()[0] == "none"
    # buckets refuses requests without a token and holds the record the operator wrote with its own.
    record = f"{url}/work/{work['status']['bucketsId']}"
    assert httpx.get(record, timeout=10).status_code == 401
    stored = httpx.get(record, headers={"x-access-token": tokens["operator-token"]}, timeout=10)
    assert stored.json()["status"] == "success"
    # kopf's liveness endpoint, as the Deployment's probe reads it.
    assert httpx.get(f"http://127.0.0.1:{health}/healthz", timeout=10).status_code == 200
    # spec.ttlSecondsAfterFinished: the operator deletes the finished Work.
    works.wait(
        "through-the-chart", lambda found: not found, timeout=60, what="deletion after its TTL"
    )
    # No RBAC denial anywhere in the operator's log.
    assert "forbidden" not in operator.log().lower(), operator.log()[-4000:]


@pytest.mark.parametrize(
    ("verb", "call"),
    [
        ("delete pods", lambda api, ns: client.CoreV1Api(api).delete_collection_namespaced_pod(ns)),
        ("read secrets", lambda api, ns: client.CoreV1Api(api).list_namespaced_secret(ns)),
        (
            "create pods",
            lambda api, ns: client.CoreV1Api(api).create_namespaced_pod(
                ns,
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "nope"},
                    "spec": {"containers": [{"name": "c", "image": "x", "command": ["true"]}]},
                },
            ),
        ),
        (
            "update jobs",
            lambda api, ns: client.BatchV1Api(api).patch_namespaced_job(
                "missing", ns, {"metadata": {"labels": {"a": "b"}}}
            ),
        ),
        (
            "create works",
            lambda api, ns: client.CustomObjectsApi(api).create_namespaced_custom_object(
                resource.GROUP,
                resource.VERSION,
                ns,
                resource.PLURAL,
                {
                    "apiVersion": resource.API_VERSION,
                    "kind": resource.KIND,
                    "metadata": {"name": "nope"},
                    "spec": {"pipeline": "p", "site": "s", "user": "u", "command": ["true"]},
                },
            ),
        ),
        (
            "list works in every namespace",
            lambda api, ns: client.CustomObjectsApi(api).list_cluster_custom_object(
                resource.GROUP, resource.VERSION, resource.PLURAL
            ),
        ),
        (
            "list jobs of the default namespace",
            lambda api, ns: client.BatchV1Api(api).list_namespaced_job("default"),
        ),
        (
            "read the CRD",
            lambda api, ns: client.ApiextensionsV1Api(api).read_custom_resource_definition(
                f"{resource.PLURAL}.{resource.GROUP}"
            ),
        ),
    ],
)
def test_the_operator_service_account_is_refused_what_the_chart_did_not_grant(
    helm, cluster, namespace, release, verb, call
):
    install(helm, namespace, release)
    token = cluster.service_account_token(namespace, f"{release}-workflow-operator")
    with cluster.api_client(token) as api, pytest.raises(ApiException) as refused:
        call(api, namespace)
    assert refused.value.status == 403, f"{verb}: {refused.value}"


def test_upgrade_applies_new_values_and_keeps_the_generated_tokens(
    helm, cluster, kube, namespace, release
):
    install(helm, namespace, release)
    before = secret_data(kube, namespace, f"{release}-workflow-tokens")
    apps = client.AppsV1Api(kube)
    result = helm.run(
        "upgrade",
        release,
        helm.chart,
        "--namespace",
        namespace,
        "--set",
        "operator.settings.backoffSeconds=7",
        "--set",
        "operator.verbose=true",
    )
    assert "REVISION: 2" in result.stdout
    container = apps.read_namespaced_deployment(
        f"{release}-workflow-operator", namespace
    ).spec.template.spec.containers[0]
    env = {var.name: var.value for var in container.env}
    assert env["WORKFLOW_OPERATOR_BACKOFF_SECONDS"] == "7"
    assert "--verbose" in container.command
    assert secret_data(kube, namespace, f"{release}-workflow-tokens") == before
    assert secret_data(kube, namespace, "workflow-buckets-token") == {
        "token": before["works-token"]
    }


def test_upgrade_to_cluster_wide_rbac_swaps_the_role_for_a_cluster_role(
    helm, cluster, kube, namespace, release
):
    install(helm, namespace, release)
    rbac = client.RbacAuthorizationV1Api(kube)
    assert [role.metadata.name for role in rbac.list_namespaced_role(namespace).items] == [
        f"{release}-workflow-operator"
    ]
    helm.run(
        "upgrade", release, helm.chart, "--namespace", namespace, "--set", "rbac.clusterWide=true"
    )
    assert rbac.list_namespaced_role(namespace).items == []
    token = cluster.service_account_token(namespace, f"{release}-workflow-operator")
    with cluster.api_client(token) as api:
        listed = client.CustomObjectsApi(api).list_cluster_custom_object(
            resource.GROUP, resource.VERSION, resource.PLURAL
        )
    assert "items" in listed
    operator = client.AppsV1Api(kube).read_namespaced_deployment(
        f"{release}-workflow-operator", namespace
    )
    env = {var.name: var.value for var in operator.spec.template.spec.containers[0].env}
    assert "WORKFLOW_OPERATOR_NAMESPACES" not in env, "cluster-wide, no list: every namespace"


def test_uninstall_leaves_only_the_crd_and_the_works(
    helm, cluster, kube, namespace, release, works
):
    install(
        helm,
        namespace,
        release,
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "buckets.podDisruptionBudget.enabled=true",
    )
    installed = released_objects(cluster, namespace, release)
    assert f"CustomResourceDefinition//{resource.PLURAL}.{resource.GROUP}" in installed
    assert f"Deployment/{namespace}/{release}-workflow-operator" in installed
    works.apply("kept", {**WORK, "command": ["true"]})

    uninstall(helm, kube, namespace, release)

    kept = [f"CustomResourceDefinition//{resource.PLURAL}.{resource.GROUP}"]
    cluster.wait_for(
        lambda: released_objects(cluster, namespace, release) == kept,
        timeout=60,
        message=f"only {kept} left; found {released_objects(cluster, namespace, release)}",
    )
    assert works.get("kept")["metadata"]["name"] == "kept"
    crd = client.ApiextensionsV1Api(kube).read_custom_resource_definition(
        f"{resource.PLURAL}.{resource.GROUP}"
    )
    assert crd.metadata.annotations["helm.sh/resource-policy"] == "keep"
    # The same release installs again over the kept CRD.
    reinstalled = helm.run("install", release, helm.chart, "--namespace", namespace)
    assert "STATUS: deployed" in reinstalled.stdout
