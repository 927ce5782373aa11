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
from typing import Any

import httpx
import pytest
import yaml
from charting import ROOT, uninstall
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from fixtures.admission import (
    WORK_CREATOR_RULES,
    as_user,
    create_work,
    grant,
    refusal,
    wait_until_enforced,
)
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
    helm, cluster, kube, namespace, work_namespace, release, chart_pods, chart_works, scope
):
    works = chart_works
    values = ["--set", "operator.settings.backoffSeconds=1",
              "--set", "operator.settings.resyncSeconds=5",
              "--set", f"rbac.clusterWide={scope == 'cluster-wide'}"]  # fmt: skip
    if scope == "namespaced":
        values += ["--set", f"operator.namespaces={{{work_namespace}}}"]
    result = install(helm, namespace, release, *values)
    assert "STATUS: deployed" in result.stdout
    tokens = secret_data(kube, namespace, f"{release}-workflow-tokens")
    assert tokens["works-token"] not in result.stdout + result.stderr, "NOTES printed a token"
    assert tokens["operator-token"] not in result.stdout + result.stderr, "NOTES printed a token"
    if scope == "namespaced":
        # Work pods' token, copied into the watched namespace under the operator's default name.
        assert secret_data(kube, work_namespace, "workflow-buckets-token") == {
            "token": tokens["works-token"]
        }
    else:
        # Watching every namespace, the chart cannot know them: as the README says, create it.
        cluster.kubectl("create", "secret", "generic", "workflow-buckets-token",
                        "-n", work_namespace,
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
    helm, cluster, namespace, work_namespace, release, verb, call
):
    install(helm, namespace, release, "--set", f"operator.namespaces={{{work_namespace}}}")
    token = cluster.service_account_token(namespace, f"{release}-workflow-operator")
    with cluster.api_client(token) as api, pytest.raises(ApiException) as refused:
        call(api, namespace)
    assert refused.value.status == 403, f"{verb}: {refused.value}"


def test_upgrade_applies_new_values_and_keeps_the_generated_tokens(
    helm, cluster, kube, namespace, work_namespace, release
):
    watched = f"operator.namespaces={{{work_namespace}}}"
    install(helm, namespace, release, "--set", watched)
    before = secret_data(kube, namespace, f"{release}-workflow-tokens")
    apps = client.AppsV1Api(kube)
    result = helm.run(
        "upgrade",
        release,
        helm.chart,
        "--namespace",
        namespace,
        "--set",
        watched,
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
    assert secret_data(kube, work_namespace, "workflow-buckets-token") == {
        "token": before["works-token"]
    }


def test_upgrade_to_cluster_wide_rbac_swaps_the_role_for_a_cluster_role(
    helm, cluster, kube, namespace, work_namespace, release
):
    install(helm, namespace, release, "--set", f"operator.namespaces={{{work_namespace}}}")
    rbac = client.RbacAuthorizationV1Api(kube)
    assert [role.metadata.name for role in rbac.list_namespaced_role(work_namespace).items] == [
        f"{release}-workflow-operator"
    ]
    helm.run(
        "upgrade", release, helm.chart, "--namespace", namespace, "--set", "rbac.clusterWide=true"
    )
    assert rbac.list_namespaced_role(work_namespace).items == []
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
    helm, cluster, kube, namespace, work_namespace, release, chart_works
):
    works = chart_works
    watched = f"operator.namespaces={{{work_namespace}}}"
    install(
        helm,
        namespace,
        release,
        "--set",
        watched,
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "buckets.podDisruptionBudget.enabled=true",
    )
    installed = released_objects(cluster, namespace, release)
    assert f"CustomResourceDefinition//{resource.PLURAL}.{resource.GROUP}" in installed
    assert f"Deployment/{namespace}/{release}-workflow-operator" in installed
    assert f"ValidatingAdmissionPolicy//{release}-workflow-works" in installed
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
    reinstalled = helm.run(
        "install", release, helm.chart, "--namespace", namespace, "--set", watched
    )
    assert "STATUS: deployed" in reinstalled.stdout


def test_a_work_admitted_for_a_user_with_the_rights_runs_to_success_and_alice_is_refused(
    helm, cluster, kube, namespace, work_namespace, release, chart_pods, chart_works
):
    """The whole chart: its policy judges the requester, its operator runs what was admitted.

    Bob may get Secret db-creds; his Work reads it and succeeds, the operator (as the chart's
    ServiceAccount, which may not read Secrets) patching its finalizer and status throughout.
    Alice, with Works create and get only, is refused the same Work.
    """
    install(helm, namespace, release, "--set", f"operator.namespaces={{{work_namespace}}}",
            "--set", "operator.settings.backoffSeconds=1",
            "--set", "operator.settings.resyncSeconds=5")  # fmt: skip
    client.CoreV1Api(kube).create_namespaced_secret(
        work_namespace, {"metadata": {"name": "db-creds"}, "stringData": {"password": "hunter2"}}
    )
    secret_rule = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                   "resourceNames": ["db-creds"]}  # fmt: skip
    grant(kube, work_namespace, "runner", "bob", [*WORK_CREATOR_RULES, secret_rule])
    grant(kube, work_namespace, "creator", "alice", WORK_CREATOR_RULES)
    wait_until_enforced(cluster, work_namespace)  # policies reach admission a moment later
    spec = {
        **WORK,
        "command": ["python3", "-c", "import os; print(len(os.environ['DB']))"],
        "env": [{"name": "DB",
                 "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}}],
    }  # fmt: skip
    with as_user(cluster, "alice") as alice:
        message = refusal(alice, work_namespace, spec, dry_run=False)
    assert message and "names Secret db-creds: alice may not get it" in message, message

    _buckets, url = chart_pods.buckets(namespace, release)
    operator, _health = chart_pods.operator(namespace, release, url)
    with as_user(cluster, "bob") as bob:
        create_work(bob, work_namespace, "bobs", spec)
    seen_finalizer = chart_works.wait(
        "bobs", lambda w: w.get("metadata", {}).get("finalizers"), timeout=60, what="a finalizer"
    )
    assert seen_finalizer["metadata"]["finalizers"]
    work = chart_works.wait_phase("bobs", "success", "failure", timeout=120)
    assert work["status"]["phase"] == "success", (work["status"], operator.log()[-4000:])
    assert work["status"]["results"]["stdout"].strip() == "7"
    assert "forbidden" not in operator.log().lower(), operator.log()[-4000:]


#: The chart before the admission policy (the last commit of the chart without it).
PREVIOUS_CHART_COMMIT = "124d1505c7815b1d2d68567720f0f4a4e236390f"


def previous_chart(tmp_path) -> str:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", PREVIOUS_CHART_COMMIT, "charts/workflow"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip(f"the previous chart's commit is not in this clone: {archive.stderr[:200]!r}")
    tmp_path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    return str(tmp_path / "charts" / "workflow")


def test_upgrade_from_the_chart_without_admission_keeps_a_running_work_running(
    helm, cluster, kube, namespace, work_namespace, release, chart_pods, chart_works, tmp_path
):
    values = ["--set", f"operator.namespaces={{{work_namespace}}}",
              "--set", "operator.settings.backoffSeconds=1",
              "--set", "operator.settings.resyncSeconds=3"]  # fmt: skip
    old = previous_chart(tmp_path / "old")
    helm.run("install", release, old, "--namespace", namespace, "--take-ownership", *values)
    tokens = secret_data(kube, namespace, f"{release}-workflow-tokens")
    _buckets, url = chart_pods.buckets(namespace, release)
    operator, _ = chart_pods.operator(namespace, release, url)
    chart_works.apply(
        "across-the-upgrade",
        {**WORK, "command": ["python3", "-c", "import time; time.sleep(8); print('done')"]},
    )
    chart_works.wait_phase("across-the-upgrade", "running", timeout=60)

    operator.stop()  # the Deployment's Recreate strategy: the old pod goes first
    result = helm.run("upgrade", release, helm.chart, "--namespace", namespace, *values)
    assert "REVISION: 2" in result.stdout
    assert secret_data(kube, namespace, f"{release}-workflow-tokens") == tokens
    admission = client.AdmissionregistrationV1Api(kube)
    assert admission.read_validating_admission_policy(f"{release}-workflow-works")
    upgraded, _ = chart_pods.operator(namespace, release, url)

    work = chart_works.wait_phase("across-the-upgrade", "success", "failure", timeout=120)
    assert work["status"]["phase"] == "success", (work["status"], upgraded.log()[-4000:])
    assert work["status"]["attempt"] == 1, "the running attempt was adopted, not run again"
    assert work["status"]["results"]["stdout"].strip() == "done"
    assert "forbidden" not in upgraded.log().lower(), upgraded.log()[-4000:]


def test_gitops_renders_twice_and_applies_twice_without_changing_anything(
    helm, cluster, kube, namespace, work_namespace, work_crd
):
    """Argo CD renders with `helm template` (no lookup) at every sync and applies the result.

    With the values the chart README's GitOps section gives, two renders are equal and the
    second apply changes no object: no new token, no new pod template, so no restart.
    """
    gitops = ("--set", "auth.existingSecret=workflow-tokens",
              "--set", "workTokenSecret.create=false",
              "--set", "workTokens.signingKeySecret=workflow-signing-key",
              "--set", f"operator.namespaces={{{work_namespace}}}")  # fmt: skip
    first = helm.template(*gitops, namespace=namespace, release="gitops")
    second = helm.template(*gitops, namespace=namespace, release="gitops")
    assert first == second
    # The generated default is what churns: two renders, two different tokens.
    assert helm.template("--set", f"operator.namespaces={{{work_namespace}}}",
                         namespace=namespace, release="gitops") != helm.template(
        "--set", f"operator.namespaces={{{work_namespace}}}", namespace=namespace,
        release="gitops")  # fmt: skip

    def apply(text: str) -> dict[str, dict[str, Any]]:
        applied = cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=argocd-controller",
            "-o", "json", "-f", "-", input=text,
        )  # fmt: skip
        items = json.loads(applied.stdout)
        items = items.get("items", [items])
        return {
            f"{i['kind']}/{i['metadata'].get('namespace', '')}/{i['metadata']['name']}": i
            for i in items
        }

    def version(item: dict[str, Any]) -> str:
        return item["metadata"]["resourceVersion"]

    documents = [doc for doc in yaml.safe_load_all(first) if doc]
    try:
        before = apply(first)
        assert len(before) == len(documents)
        after = apply(second)
        third = apply(second)

        def content(item: dict[str, Any]) -> dict[str, Any]:
            return {**item, "metadata": {k: v for k, v in item["metadata"].items()
                                         if k != "resourceVersion"}}  # fmt: skip

        changed = [key for key in before if content(after[key]) != content(before[key])]
        assert not changed, f"the second apply changed {changed}"
        # No write at all, but for one bookkeeping write: the PersistentVolumeClaim's
        # finalizer, added by the apiserver's admission during the first apply, changes
        # field owner in the second (managedFields only). After that, nothing is written.
        written = sorted(k for k in before if version(after[k]) != version(before[k]))
        assert [k.split("/")[0] for k in written] in ([], ["PersistentVolumeClaim"]), written
        rewritten = sorted(k for k in after if version(third[k]) != version(after[k]))
        assert not rewritten, f"the third apply wrote {rewritten}"
        operator = client.AppsV1Api(kube).read_namespaced_deployment(
            "gitops-workflow-operator", namespace
        )
        assert operator.metadata.generation == 1, "the pod template changed: a restart"
    finally:
        cluster.kubectl(
            "delete", "--ignore-not-found", "--wait=false", "-f", "-",
            input=yaml.safe_dump_all([d for d in documents
                                      if d["kind"] != "CustomResourceDefinition"]),
            check=False,
        )  # fmt: skip
