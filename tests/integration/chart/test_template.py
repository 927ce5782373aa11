"""`helm lint`, the values schema's refusals, and `helm template` judged by the real apiserver.

Every combination of values below renders objects that the local
kube-apiserver accepts (`kubectl apply --dry-run=server`: OpenAPI schemas,
defaulting, CRD validation) in a namespace that enforces the *restricted* Pod
Security Standard with warnings on, so a Deployment whose pods would break it
fails the test. The one kind not sent to the server is the ServiceMonitor:
its CRD (Prometheus Operator) is not installed here; its fields are checked
against the ones that CRD documents instead.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml
from kubernetes import client

pytestmark = [pytest.mark.integration]

NOT_ON_THIS_SERVER = {"ServiceMonitor"}
#: Where Works run in these renders: never the release namespace (the chart refuses that).
WORKS = ("--set", "operator.namespaces={works}")


def kinds(documents: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{doc['kind']}/{doc['metadata'].get('namespace', '')}" for doc in documents)


def pod_specs(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"]: doc["spec"]["template"]["spec"]
        for doc in documents
        if doc["kind"] == "Deployment"
    }


def env_of(documents: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
    container = pod_specs(documents)[deployment]["containers"][0]
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in container["env"]}


@pytest.fixture
def restricted_namespace(cluster, kube, namespace) -> str:
    """The test's namespace, enforcing and warning on the restricted Pod Security Standard."""
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}
    client.CoreV1Api(kube).patch_namespace(namespace, {"metadata": {"labels": labels}})
    return namespace


def server_accepts(cluster, documents: list[dict[str, Any]]) -> None:
    sent = [doc for doc in documents if doc["kind"] not in NOT_ON_THIS_SERVER]
    # Server-side apply, as Helm 4 does (and no client-side bookkeeping warnings about
    # objects an earlier `helm install` of the session created).
    result = cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=chart-tests",
        "--dry-run=server",
        "-f",
        "-",
        input=yaml.safe_dump_all(sent),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    assert result.stdout.count("(server dry run)") == len(sent), result.stdout


def test_helm_lint_passes_in_strict_mode(helm_cli):
    result = helm_cli.run("lint", "--strict", helm_cli.chart)
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout, result.stdout


@pytest.mark.cluster
def test_defaults_namespaced_operator_sqlite_buckets_a_kept_crd_and_the_admission_policy(
    helm, cluster, restricted_namespace
):
    ns = restricted_namespace
    # Works run in "default" (it exists, so the server judges the Role and the Secret there).
    documents = helm.documents("--set", "operator.namespaces={default}", namespace=ns)
    assert kinds(documents) == sorted(
        [
            "CustomResourceDefinition/",
            "Deployment/" + ns,
            "Deployment/" + ns,
            "PersistentVolumeClaim/" + ns,
            "Role/default",
            "RoleBinding/default",
            "Secret/" + ns,
            "Secret/" + ns,
            "Secret/default",
            "Service/" + ns,
            "ServiceAccount/" + ns,
            "ServiceAccount/" + ns,
            "ValidatingAdmissionPolicy/",
            "ValidatingAdmissionPolicyBinding/",
        ]
    )
    crd = next(doc for doc in documents if doc["kind"] == "CustomResourceDefinition")
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    operator = env_of(documents, "wf-workflow-operator")
    assert operator["WORKFLOW_OPERATOR_NAMESPACES"] == "default"
    assert operator["WORKFLOW_OPERATOR_BUCKETS_URL"] == f"http://wf-workflow-buckets.{ns}.svc:8004"
    assert (
        operator["WORKFLOW_OPERATOR_JOB_BUCKETS_URL"] == operator["WORKFLOW_OPERATOR_BUCKETS_URL"]
    )
    assert operator["WORKFLOW_OPERATOR_BUCKETS_TOKEN"] == {
        "secretKeyRef": {"name": "wf-workflow-tokens", "key": "operator-token"}
    }
    buckets = env_of(documents, "wf-workflow-buckets")
    assert buckets["WORKFLOW_BUCKETS_DATABASE"] == "sqlite:////data/buckets.sqlite3"
    # Both sides of the per-attempt Work tokens read the one generated signing key.
    signing = {"secretKeyRef": {"name": "wf-workflow-signing-key", "key": "signing-key"}}
    assert operator["WORKFLOW_OPERATOR_TOKEN_SIGNING_KEY"] == signing
    assert buckets["WORKFLOW_BUCKETS_SIGNING_KEY"] == signing
    deployments = {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == "Deployment"}
    assert deployments["wf-workflow-operator"]["spec"]["replicas"] == 1
    assert deployments["wf-workflow-operator"]["spec"]["strategy"] == {"type": "Recreate"}
    assert deployments["wf-workflow-buckets"]["spec"]["strategy"] == {"type": "Recreate"}
    server_accepts(cluster, documents)


@pytest.mark.cluster
def test_namespaced_rbac_gives_each_watched_namespace_a_role_and_a_token(
    helm, cluster, restricted_namespace
):
    ns = restricted_namespace
    documents = helm.documents(
        "--set",
        f"operator.namespaces={{{ns},default}}",
        "--set",
        "operator.runWorksInReleaseNamespace=true",
        namespace=ns,
    )
    roles = sorted(doc["metadata"]["namespace"] for doc in documents if doc["kind"] == "Role")
    bindings = [doc for doc in documents if doc["kind"] == "RoleBinding"]
    tokens = sorted(
        doc["metadata"]["namespace"]
        for doc in documents
        if doc["kind"] == "Secret" and doc["metadata"]["name"] == "workflow-buckets-token"
    )
    assert roles == tokens == sorted([ns, "default"])
    assert {b["subjects"][0]["namespace"] for b in bindings} == {ns}
    assert not [doc for doc in documents if doc["kind"].startswith("Cluster")]
    assert (
        env_of(documents, "wf-workflow-operator")["WORKFLOW_OPERATOR_NAMESPACES"] == f"{ns},default"
    )
    server_accepts(cluster, documents)


@pytest.mark.cluster
@pytest.mark.parametrize("listed", [False, True])
def test_cluster_wide_rbac_is_one_cluster_role_and_binding(
    helm, cluster, restricted_namespace, listed
):
    ns = restricted_namespace
    extra = ["--set", "operator.namespaces={default}"] if listed else []
    documents = helm.documents("--set", "rbac.clusterWide=true", *extra, namespace=ns)
    assert [d["kind"] for d in documents if "Role" in d["kind"]] == [
        "ClusterRole",
        "ClusterRoleBinding",
    ]
    env = env_of(documents, "wf-workflow-operator")
    assert env.get("WORKFLOW_OPERATOR_NAMESPACES") == ("default" if listed else None)
    server_accepts(cluster, documents)


@pytest.mark.cluster
def test_postgresql_with_existing_secrets_runs_several_buckets_replicas(
    helm, cluster, restricted_namespace
):
    ns = restricted_namespace
    documents = helm.documents(
        "--set",
        "buckets.database.type=postgresql",
        "--set",
        "buckets.database.existingSecret=buckets-db",
        "--set",
        "buckets.database.existingSecretKey=url",
        "--set",
        "buckets.replicas=3",
        "--set",
        "auth.existingSecret=my-tokens",
        "--set",
        "workTokens.signingKeySecret=my-signing-key",
        "--set",
        "workTokenSecret.create=false",
        "--set",
        "operator.namespaces={default}",
        namespace=ns,
    )
    assert not [doc for doc in documents if doc["kind"] == "PersistentVolumeClaim"]
    assert not [doc for doc in documents if doc["kind"] == "Secret"], "no generated Secret"
    buckets = next(
        d
        for d in documents
        if d["metadata"]["name"] == "wf-workflow-buckets" and d["kind"] == "Deployment"
    )
    assert buckets["spec"]["replicas"] == 3
    assert buckets["spec"]["strategy"] == {"type": "RollingUpdate"}
    env = env_of(documents, "wf-workflow-buckets")
    assert env["WORKFLOW_BUCKETS_DATABASE"] == {
        "secretKeyRef": {"name": "buckets-db", "key": "url"}
    }
    assert env["BUCKETS_OPERATOR_TOKEN"] == {
        "secretKeyRef": {"name": "my-tokens", "key": "operator-token"}
    }
    assert env_of(documents, "wf-workflow-operator")["WORKFLOW_OPERATOR_BUCKETS_TOKEN"] == {
        "secretKeyRef": {"name": "my-tokens", "key": "operator-token"}
    }
    server_accepts(cluster, documents)


@pytest.mark.cluster
def test_network_policy_service_monitor_and_disruption_budget_render_valid_objects(
    helm, cluster, restricted_namespace
):
    ns = restricted_namespace
    documents = helm.documents(
        "--set",
        "operator.namespaces={default}",
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "buckets.serviceMonitor.enabled=true",
        "--set",
        "buckets.podDisruptionBudget.enabled=true",
        "--set-json",
        'networkPolicy.bucketsExtraFrom=[{"ipBlock":{"cidr":"10.0.0.0/8"}}]',
        namespace=ns,
    )
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in documents:
        by_kind.setdefault(doc["kind"], []).append(doc)
    assert len(by_kind["NetworkPolicy"]) == 2
    assert len(by_kind["PodDisruptionBudget"]) == 1
    [monitor] = by_kind["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    # The fields of the Prometheus Operator's ServiceMonitor this chart uses.
    assert set(monitor["spec"]) == {"selector", "namespaceSelector", "endpoints"}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [ns]}
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    service = next(doc for doc in documents if doc["kind"] == "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    buckets_policy = next(
        p for p in by_kind["NetworkPolicy"] if p["metadata"]["name"].endswith("buckets")
    )
    peers = buckets_policy["spec"]["ingress"][0]["from"]
    assert {"ipBlock": {"cidr": "10.0.0.0/8"}} in peers
    server_accepts(cluster, documents)


@pytest.mark.cluster
def test_external_buckets_deploys_only_the_operator(helm, cluster, restricted_namespace):
    ns = restricted_namespace
    documents = helm.documents(
        "--set",
        "buckets.enabled=false",
        "--set",
        "operator.bucketsUrl=https://buckets.example.org",
        "--set",
        "auth.existingSecret=my-tokens",
        "--set",
        "workTokenSecret.create=false",
        "--set",
        "operator.namespaces={default}",
        "--set",
        "crds.enabled=false",
        namespace=ns,
    )
    assert [d["metadata"]["name"] for d in documents if d["kind"] == "Deployment"] == [
        "wf-workflow-operator"
    ]
    assert not [d for d in documents if d["kind"] in ("Service", "CustomResourceDefinition")]
    env = env_of(documents, "wf-workflow-operator")
    assert env["WORKFLOW_OPERATOR_BUCKETS_URL"] == "https://buckets.example.org"
    server_accepts(cluster, documents)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["--set", "buckets.replicas=2"], "replicas"),
        (["--set", "buckets.replica=1"], "replica"),
        (["--set", "operator.settings.colour=blue"], "colour"),
        (["--set", "buckets.database.type=postgresql"], "existingSecret"),
        (["--set", "buckets.database.type=mysql"], "type"),
        (["--set", "buckets.enabled=false"], "bucketsUrl"),
        (["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
        (["--set", "operator.namespaces={Not_A_Namespace}"], "namespaces"),
        (["--set", "operator.settings.runAsUser=0"], "runAsUser"),
    ],
)
def test_values_schema_refuses_what_cannot_work(helm_cli, values, expected):
    result = helm_cli.run("template", "wf", helm_cli.chart, *WORKS, *values, check=False)
    assert result.returncode != 0, f"accepted: {values}"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert expected in result.stderr, result.stderr


def test_sqlite_with_more_than_one_replica_is_refused_with_the_reason(helm_cli):
    result = helm_cli.run(
        "template", "wf", helm_cli.chart, *WORKS, "--set", "buckets.replicas=2", check=False
    )
    assert result.returncode != 0
    assert "buckets/replicas" in result.stderr and "maximum" in result.stderr, result.stderr


def test_every_pod_and_container_of_every_variant_is_restricted(helm_cli):
    variants = [
        [],
        [
            "--set",
            "buckets.database.type=postgresql",
            "--set",
            "buckets.database.existingSecret=db",
            "--set",
            "buckets.replicas=2",
        ],
    ]
    for values in variants:
        for name, spec in pod_specs(helm_cli.documents(*WORKS, *values)).items():
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, name
            assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
            for container in spec["containers"]:
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, name
                assert context["readOnlyRootFilesystem"] is True, name
                assert context["capabilities"] == {"drop": ["ALL"]}, name
                tmp = {"name": "tmp", "mountPath": "/tmp"}  # noqa: S108 - the pod's own emptyDir
                assert tmp in container["volumeMounts"], name
                assert container["resources"]["limits"]["memory"], name
            assert spec["enableServiceLinks"] is False, name


@pytest.mark.parametrize("release", ["wf", "workflow"])
def test_object_names_are_unique_even_for_a_release_named_like_the_chart(helm_cli, release):
    documents = helm_cli.documents(
        "--set",
        "operator.namespaces={workflow,team}",
        "--set",
        "operator.runWorksInReleaseNamespace=true",
        namespace="workflow",
        release=release,
    )
    names = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in documents]
    assert len(names) == len(set(names)), sorted(names)


def test_generated_tokens_are_shared_by_the_secret_and_the_work_namespace_copy(helm_cli):
    documents = helm_cli.documents(*WORKS)
    secrets = {doc["metadata"]["name"]: doc["data"] for doc in documents if doc["kind"] == "Secret"}
    assert (
        secrets["workflow-buckets-token"]["token"] == secrets["wf-workflow-tokens"]["works-token"]
    )
    assert (
        secrets["wf-workflow-tokens"]["works-token"]
        != secrets["wf-workflow-tokens"]["operator-token"]
    )
    annotations = {
        doc["metadata"]["name"]: doc["spec"]["template"]["metadata"]["annotations"][
            "checksum/token"
        ]
        for doc in documents
        if doc["kind"] == "Deployment"
    }
    assert len(set(annotations.values())) == 1


TEAM_A = ("--set", "operator.namespaces={team-a}")


def test_the_signing_key_is_generated_long_or_taken_from_an_existing_secret(helm_cli):
    [key] = [
        d for d in helm_cli.documents(*TEAM_A) if d["metadata"]["name"] == "wf-workflow-signing-key"
    ]
    assert len(base64.b64decode(key["data"]["signing-key"])) >= 32
    documents = helm_cli.documents(*TEAM_A, "--set", "workTokens.signingKeySecret=our-key")
    assert not [d for d in documents if d["metadata"]["name"] == "wf-workflow-signing-key"]
    assert env_of(documents, "wf-workflow-operator")["WORKFLOW_OPERATOR_TOKEN_SIGNING_KEY"] == {
        "secretKeyRef": {"name": "our-key", "key": "signing-key"}
    }
    documents = helm_cli.documents(*TEAM_A, "--set", "workTokens.mint=false")
    assert "WORKFLOW_OPERATOR_TOKEN_SIGNING_KEY" not in env_of(documents, "wf-workflow-operator")
    assert "WORKFLOW_BUCKETS_SIGNING_KEY" not in env_of(documents, "wf-workflow-buckets")
    assert not [d for d in documents if d["metadata"]["name"] == "wf-workflow-signing-key"]


def test_notes_put_warnings_first_and_never_a_token(helm_cli):
    rendered = helm_cli.run(
        "install",
        "wf",
        helm_cli.chart,
        "--dry-run=client",
        "--set",
        "buckets.persistence.enabled=false",
        "--set",
        "rbac.clusterWide=true",
    ).stdout
    notes = rendered.split("NOTES:", 1)[1]
    assert notes.lstrip().startswith("WARNING: buckets keeps its SQLite file on an emptyDir")
    assert "WARNING: the operator runs Works in every namespace" in notes
    manifest = rendered.split("NOTES:", 1)[0]
    secret = next(
        doc
        for doc in yaml.safe_load_all(manifest.split("MANIFEST:", 1)[1])
        if doc and doc["kind"] == "Secret"
    )

    for value in secret["data"].values():
        assert base64.b64decode(value).decode() not in notes


def test_the_rendered_crd_is_the_generated_one_plus_labels_and_the_keep_policy(helm_cli):
    from pathlib import Path

    generated = yaml.safe_load((Path(helm_cli.chart).parents[1] / "crds" / "work.yaml").read_text())
    for values, expected in (
        (["--set", "crds.keep=true"], {"helm.sh/resource-policy": "keep"}),
        (["--set", "crds.keep=false"], None),
    ):
        [crd] = [
            d
            for d in helm_cli.documents(*WORKS, *values)
            if d["kind"] == "CustomResourceDefinition"
        ]
        assert crd["metadata"].pop("labels")["app.kubernetes.io/component"] == "crd"
        assert crd["metadata"].pop("annotations", None) == expected
        assert crd == generated
    rendered = helm_cli.documents(*WORKS, "--set", "crds.enabled=false")
    assert not [d for d in rendered if d["kind"] == "CustomResourceDefinition"]


def test_the_readme_lists_exactly_the_rbac_rules_the_chart_grants(helm_cli):
    import re
    from pathlib import Path

    [role] = [d for d in helm_cli.documents(*WORKS) if d["kind"] == "Role"]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    readme = (Path(helm_cli.chart) / "README.md").read_text()
    readme = readme.split("## What the operator may do (RBAC)", 1)[1].split("\n## ", 1)[0]
    listed = set()
    for group, resource, verbs in re.findall(
        r"^\| (`[^|]*`|\(core\)) \| `([^`]+)` \| ([^|]+) \|", readme, re.M
    ):
        group = "" if group == "(core)" else group.strip("`")
        listed |= {(group, resource, verb.strip()) for verb in verbs.split(",")}
    assert listed == granted


@pytest.mark.parametrize(
    "values",
    [
        [],  # namespaced, no list: the release namespace
        ["--set", "operator.namespaces={team-a,workflow}"],
        ["--set", "rbac.clusterWide=true", "--set", "admission.enabled=false"],
    ],
    ids=["default", "listed", "every-namespace-without-admission"],
)
def test_works_in_the_operator_namespace_are_refused_at_template_time(helm_cli, values):
    result = helm_cli.run(
        "template", "wf", helm_cli.chart, "--namespace", "workflow", *values, check=False
    )
    assert result.returncode != 0, "rendered"
    assert 'the operator would run Works in its own namespace "workflow"' in result.stderr or (
        'the operator watches every namespace, including its own "workflow"' in result.stderr
    ), result.stderr
    assert "operator.runWorksInReleaseNamespace=true" in result.stderr, result.stderr
    accepted = helm_cli.run(
        "template", "wf", helm_cli.chart, "--namespace", "workflow", *values,
        "--set", "operator.runWorksInReleaseNamespace=true",
    )  # fmt: skip
    assert "kind: Deployment" in accepted.stdout


def policy_variables(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """The policy's variables that carry chart values (written as JSON, which is also CEL)."""
    [policy] = [d for d in documents if d["kind"] == "ValidatingAdmissionPolicy"]
    names = ("imagePrefixes", "maxResources", "maxResourcesText", "tolerationKeys",
             "nodeSelectorKeys", "operatorNamespace")  # fmt: skip
    return {
        v["name"]: json.loads(v["expression"])
        for v in policy["spec"]["variables"]
        if v["name"] in names
    }


def test_watching_every_namespace_makes_the_policy_refuse_the_operator_namespace(helm_cli):
    def refused_namespace(*values: str) -> str:
        documents = helm_cli.documents(*values, namespace="workflow")
        return policy_variables(documents)["operatorNamespace"]

    assert refused_namespace("--set", "rbac.clusterWide=true") == "workflow"
    assert refused_namespace(*WORKS) == ""
    accepted = ("--set", "operator.runWorksInReleaseNamespace=true")
    assert refused_namespace("--set", "rbac.clusterWide=true", *accepted) == ""


def test_the_admission_limits_are_rendered_into_the_policy(helm_cli):
    documents = helm_cli.documents(*WORKS, "--set", "image.repository=registry.example.org/wf")
    assert policy_variables(documents) == {
        # Empty allowedImagePrefixes: the chart's own image only.
        "imagePrefixes": ["registry.example.org/wf:", "registry.example.org/wf@"],
        "maxResources": {"cpu": "4", "ephemeral-storage": "10Gi", "memory": "16Gi"},
        "maxResourcesText": "cpu=4, ephemeral-storage=10Gi, memory=16Gi",
        "tolerationKeys": [],
        "nodeSelectorKeys": [],
        "operatorNamespace": "",
    }
    [binding] = [d for d in documents if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["works"]}
    ]
    documents = helm_cli.documents(
        *WORKS,
        "--set-json",
        'admission.allowedImagePrefixes=["registry.example.org/","*"]',
        "--set-json",
        'admission.maxResources={"cpu":2,"nvidia.com/gpu":"1","ephemeral-storage":null}',
        "--set-json",
        'admission.allowedTolerationKeys=["dedicated","gpu"]',
        "--set-json",
        'admission.allowedNodeSelectorKeys=["kubernetes.io/arch"]',
    )
    assert policy_variables(documents) == {
        "imagePrefixes": ["registry.example.org/", "*"],
        # Merged with the defaults; null removes one.
        "maxResources": {"cpu": "2", "memory": "16Gi", "nvidia.com/gpu": "1"},
        "maxResourcesText": "cpu=2, memory=16Gi, nvidia.com/gpu=1",
        "tolerationKeys": ["dedicated", "gpu"],
        "nodeSelectorKeys": ["kubernetes.io/arch"],
        "operatorNamespace": "",
    }
    disabled = helm_cli.documents(*WORKS, "--set", "admission.enabled=false")
    assert not [d for d in disabled if "Admission" in d["kind"]]


def test_an_existing_auth_secret_never_silently_skips_the_work_namespace_copies(helm_cli):
    """Without a cluster to read auth.existingSecret from, the copies cannot be made: say so."""
    values = ("--set", "auth.existingSecret=my-tokens", *WORKS)
    result = helm_cli.run("template", "wf", helm_cli.chart, *values, check=False)
    assert result.returncode != 0, "rendered without the Work namespace copies"
    assert 'auth.existingSecret "my-tokens"' in result.stderr, result.stderr
    assert "workTokenSecret.create=false" in result.stderr, result.stderr
    assert "works" in result.stderr, "names the namespaces that would lack the token"
    documents = helm_cli.documents(
        *values, "--set", "workTokenSecret.create=false",
        "--set", "workTokens.signingKeySecret=my-signing-key",
    )  # fmt: skip
    assert not [d for d in documents if d["kind"] == "Secret"]
