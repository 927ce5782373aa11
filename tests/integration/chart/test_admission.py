"""The chart's admission policy on the real apiserver, judging real users through real RBAC.

The policy and its binding are rendered from the chart (`helm
template --show-only`) and applied without the rest of the release. Alice
holds what the issue's attacker held - `create` and `get` on Works in one
namespace, nothing else - and each escalation she tried is refused with a
message naming the field and the missing permission or limit. Bob holds
those permissions (get on one Secret and one ConfigMap, use of one
ServiceAccount): the same Works are admitted. The operator's own writes
(finalizers, status) are never judged; a change of spec is, whoever makes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from charting import CHART
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from fixtures.admission import (
    WORK_CREATOR_RULES,
    as_user,
    create_work,
    grant,
    install_policy,
    policy_documents,
    refusal,
    remove_policy,
)
from workflow.controller import resource

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

BASE = {"pipeline": "admission", "site": "local", "user": "tester", "command": ["true"]}
LIMITS = (
    "--set-json", 'admission.allowedImagePrefixes=["registry.example.org/"]',
    "--set-json", 'admission.maxResources={"cpu":"2","memory":"1Gi","ephemeral-storage":null}',
    "--set-json", 'admission.allowedTolerationKeys=["dedicated"]',
    "--set-json", 'admission.allowedNodeSelectorKeys=["kubernetes.io/arch"]',
)  # fmt: skip


@pytest.fixture
def home(cluster, kube) -> Iterator[str]:
    """The release namespace the policy is rendered for (not a Work namespace)."""
    core = client.CoreV1Api(kube)
    name = f"home-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
def policy(helm_binary, cluster, kube, namespace, home, work_crd) -> Iterator[list[dict]]:
    """The chart's policy, bound to the test's namespace, with LIMITS."""
    documents = policy_documents(
        helm_binary,
        str(CHART),
        "--set",
        f"operator.namespaces={{{namespace}}}",
        *LIMITS,
        namespace=home,
        release=f"adm-{namespace[-6:]}",
    )
    install_policy(cluster, documents, namespace)
    yield documents
    remove_policy(cluster, documents)


@pytest.fixture
def secrets(kube, namespace) -> dict[str, str]:
    """A database password, a ConfigMap, and a ServiceAccount token Secret, as in the issue."""
    core = client.CoreV1Api(kube)
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "db-creds"}, "stringData": {"password": "hunter2"}},
    )
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "settings"}, "data": {"level": "debug"}}
    )
    for account in ("admin-sa", "runner"):
        core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {
                "name": "admin-sa-token",
                "annotations": {"kubernetes.io/service-account.name": "admin-sa"},
            },
            "type": "kubernetes.io/service-account-token",
        },
    )
    return {"password": "hunter2"}


@pytest.fixture
def alice(cluster, kube, namespace) -> Iterator[client.ApiClient]:
    """Bound to a Role with only `create` and `get` on Works."""
    grant(kube, namespace, "work-creator", "alice", WORK_CREATOR_RULES)
    api = as_user(cluster, "alice")
    yield api
    api.close()


@pytest.fixture
def bob(cluster, kube, namespace) -> Iterator[client.ApiClient]:
    """Creates Works; gets db-creds, admin-sa-token and settings, and use ServiceAccount runner."""
    grant(
        kube,
        namespace,
        "work-runner",
        "bob",
        [
            *WORK_CREATOR_RULES,
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
             "resourceNames": ["db-creds", "admin-sa-token"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
             "resourceNames": ["settings"]},
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["use"],
             "resourceNames": ["runner"]},
        ],
    )  # fmt: skip
    api = as_user(cluster, "bob")
    yield api
    api.close()


STOLEN = {
    **BASE,
    "command": ["printenv", "STOLEN"],
    "env": [{"name": "STOLEN",
             "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}}],
}  # fmt: skip
ESCALATIONS = {
    "secret-through-env": (
        STOLEN,
        "spec.env[STOLEN].valueFrom.secretKeyRef names Secret db-creds: alice may not get it "
        "(needs RBAC verb get on secrets in namespace {ns})",
    ),
    "service-account-token-through-tokenSecretRef": (
        {**BASE, "tokenSecretRef": {"name": "admin-sa-token", "key": "token"}},
        "spec.tokenSecretRef names Secret admin-sa-token: alice may not get it "
        "(needs RBAC verb get on secrets in namespace {ns})",
    ),
    "configmap-through-env": (
        {**BASE, "env": [{"name": "LEVEL",
                          "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}}]},
        "spec.env[LEVEL].valueFrom.configMapKeyRef names ConfigMap settings: alice may not get it "
        "(needs RBAC verb get on configmaps in namespace {ns})",
    ),
    "service-account": (
        {**BASE, "serviceAccountName": "admin-sa"},
        "spec.serviceAccountName names ServiceAccount admin-sa: alice may not use it "
        "(needs RBAC verb use on serviceaccounts, resourceNames admin-sa, in namespace {ns})",
    ),
    "image": (
        {**BASE, "image": "evil.example.com/miner:1"},
        "spec.image evil.example.com/miner:1 does not start with an allowed prefix "
        "(admission.allowedImagePrefixes: registry.example.org/)",
    ),
    "image-prefix-lookalike": (
        {**BASE, "image": "registry.example.org.evil.com/x:1"},
        "spec.image registry.example.org.evil.com/x:1 does not start with an allowed prefix",
    ),
    "toleration-of-every-taint": (
        {**BASE, "tolerations": [{"operator": "Exists"}]},
        "spec.tolerations: no key (tolerates every taint) not allowed "
        "(admission.allowedTolerationKeys: dedicated)",
    ),
    "toleration-of-the-control-plane": (
        {**BASE, "tolerations": [{"key": "node-role.kubernetes.io/control-plane",
                                  "operator": "Exists"}]},
        "spec.tolerations: key node-role.kubernetes.io/control-plane not allowed",
    ),
    "cpu-above-the-ceiling": (
        {**BASE, "resources": {"requests": {"cpu": "64"}}},
        "spec.resources.requests.cpu=64: above the ceiling, not a quantity, or not a resource "
        "Works may ask for (admission.maxResources: cpu=2, memory=1Gi)",
    ),
    "memory-limit-above-the-ceiling": (
        {**BASE, "resources": {"limits": {"memory": "1025Mi"}}},
        "spec.resources.limits.memory=1025Mi: above the ceiling",
    ),
    "a-resource-not-listed": (
        {**BASE, "resources": {"limits": {"nvidia.com/gpu": "1"}}},
        "spec.resources.limits.nvidia.com/gpu=1: above the ceiling, not a quantity, or not a "
        "resource Works may ask for",
    ),
    "node-selector-key": (
        {**BASE, "nodeSelector": {"kubernetes.io/hostname": "control-plane-1"}},
        "spec.nodeSelector: key kubernetes.io/hostname not allowed "
        "(admission.allowedNodeSelectorKeys: kubernetes.io/arch)",
    ),
    "a-value-source-the-policy-does-not-know": (
        {**BASE, "env": [{"name": "F", "valueFrom": {
            "fileKeyRef": {"path": "x", "key": "k", "volumeName": "tmp"}}}]},
        "spec.env[F].valueFrom.fileKeyRef: not a source this policy can judge",
    ),
}  # fmt: skip


def test_alice_may_not_read_secrets_herself(alice, namespace, secrets):
    """The premise: RBAC refuses Alice the Secret itself."""
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(alice).read_namespaced_secret("db-creds", namespace)
    assert refused.value.status == 403


@pytest.mark.parametrize("case", list(ESCALATIONS))
def test_each_escalation_is_refused_naming_the_field_and_the_permission(
    policy, alice, namespace, secrets, case
):
    spec, expected = ESCALATIONS[case]
    message = refusal(alice, namespace, spec, dry_run=False)
    assert message is not None, f"admitted: {spec}"
    assert "ValidatingAdmissionPolicy" in message, message
    assert expected.format(ns=namespace) in message, message


def test_a_work_with_every_escalation_is_refused_for_each_until_none_is_left(
    policy, alice, namespace, secrets
):
    """The apiserver reports the first failing rule; removing that field reveals the next."""
    spec: dict[str, Any] = {
        **STOLEN,
        "tokenSecretRef": {"name": "admin-sa-token"},
        "serviceAccountName": "admin-sa",
        "image": "evil.example.com/x:1",
        "tolerations": [{"operator": "Exists"}],
        "resources": {"requests": {"cpu": "64"}},
        "nodeSelector": {"kubernetes.io/hostname": "n1"},
    }
    fields = {
        "spec.env[STOLEN]": "env",
        "spec.tokenSecretRef": "tokenSecretRef",
        "spec.serviceAccountName": "serviceAccountName",
        "spec.image": "image",
        "spec.tolerations": "tolerations",
        "spec.resources": "resources",
        "spec.nodeSelector": "nodeSelector",
    }
    named = []
    while (message := refusal(alice, namespace, spec)) is not None:
        field = next((f for f in fields if f in message), None)
        assert field is not None and fields[field] in spec, message
        named.append(field)
        del spec[fields[field]]
    assert sorted(named) == sorted(fields)


def test_the_same_works_are_admitted_for_a_user_with_the_permissions(
    policy, bob, kube, namespace, secrets
):
    specs = {
        "env-secret": STOLEN,
        "token-secret": {**BASE, "tokenSecretRef": {"name": "admin-sa-token", "key": "token"}},
        "env-configmap": ESCALATIONS["configmap-through-env"][0],
        "account": {**BASE, "serviceAccountName": "runner"},
        "within-limits": {
            **BASE,
            "image": "registry.example.org/team/job:1",
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2"}},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "batch"}],
            "nodeSelector": {"kubernetes.io/arch": "amd64"},
            "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        },
    }
    for name, spec in specs.items():
        created = create_work(bob, namespace, name, spec)
        assert created["metadata"]["name"] == name
    # Bob may use runner, not admin-sa: the check is per ServiceAccount.
    refused = refusal(bob, namespace, {**BASE, "serviceAccountName": "admin-sa"})
    assert refused and "bob may not use it" in refused, refused


@pytest.fixture
def operator_identity(cluster, kube, namespace) -> Iterator[client.ApiClient]:
    """A ServiceAccount with the operator's rights on Works (the chart's Role), impersonated."""
    core = client.CoreV1Api(kube)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "operator"}})
    rules = [
        {"apiGroups": [resource.GROUP], "resources": [resource.PLURAL],
         "verbs": ["list", "watch", "patch", "delete", "get"]},
        {"apiGroups": [resource.GROUP], "resources": [f"{resource.PLURAL}/status"],
         "verbs": ["patch"]},
    ]  # fmt: skip
    rbac = client.RbacAuthorizationV1Api(kube)
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "operator"}, "rules": rules})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "operator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "operator",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": namespace}],
        },
    )
    api = as_user(cluster, f"system:serviceaccount:{namespace}:operator")
    yield api
    api.close()


def test_the_operator_finalizer_and_status_patches_are_never_judged(
    policy, bob, operator_identity, namespace, secrets
):
    """The operator may not read db-creds yet patches a Work naming it; a spec change is judged."""
    create_work(bob, namespace, "judged-once", STOLEN)
    works = client.CustomObjectsApi(operator_identity)
    args = (resource.GROUP, resource.VERSION, namespace, resource.PLURAL, "judged-once")
    works.patch_namespaced_custom_object(*args, {"metadata": {"finalizers": ["workflow.dev/x"]}})
    works.patch_namespaced_custom_object(*args, {"metadata": {"annotations": {"a": "b"}}})
    # A finished Work: the CRD lets its spec.runId change, so only the policy can refuse it.
    works.patch_namespaced_custom_object_status(
        *args, {"status": {"phase": "success", "attempt": 1, "message": "patched"}}
    )
    works.patch_namespaced_custom_object(*args, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as refused:
        works.patch_namespaced_custom_object(*args, {"spec": {"runId": "again"}})
    assert refused.value.status in (403, 422), refused.value.body
    assert f"system:serviceaccount:{namespace}:operator may not get it" in str(refused.value.body)
    found = works.get_namespaced_custom_object(*args)
    assert found["status"]["message"] == "patched"


def test_outside_the_watched_namespaces_the_policy_does_not_apply(policy, cluster, kube, work_crd):
    """The binding selects the operator's namespaces; elsewhere this operator runs nothing."""
    other = f"other-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": other}})
    try:
        assert refusal(kube, other, {**BASE, "image": "evil.example.com/x:1"}) is None
    finally:
        core.delete_namespace(other)


def test_a_work_may_name_up_to_max_references_secrets_and_no_more(policy, cluster, kube, namespace):
    """Each reference costs an authorizer check; the apiserver's cost budget bounds them."""
    names = [f"s{i}" for i in range(17)]
    secret_rule = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                   "resourceNames": names}  # fmt: skip
    grant(kube, namespace, "many", "carol", [*WORK_CREATOR_RULES, secret_rule])

    def spec(count: int) -> dict[str, Any]:
        env = [{"name": f"E{i}", "valueFrom": {"secretKeyRef": {"name": name, "key": "k"}}}
               for i, name in enumerate(names[:count])]  # fmt: skip
        return {**BASE, "env": env}

    with as_user(cluster, "carol") as carol:
        assert refusal(carol, namespace, spec(16)) is None
        message = refusal(carol, namespace, spec(17))
    assert message and "spec names 17 Secrets and ConfigMaps" in message, message
    assert "admission.maxReferences" in message, message
