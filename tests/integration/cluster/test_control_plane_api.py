"""The local control plane enforces what a real one does: RBAC for ServiceAccount tokens, and CRD
schemas with CEL validation rules."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from fixtures.cluster import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def test_service_account_without_rights_gets_403_listing_jobs_and_one_bound_to_a_role_succeeds(
    cluster: Cluster, kube: client.ApiClient, namespace: str
) -> None:
    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    for name in ("nobody", "reader"):
        core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "job-reader"},
            "rules": [
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]}
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader-reads-jobs"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "job-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )

    nobody = cluster.service_account_token(namespace, "nobody")
    with (
        cluster.api_client(nobody) as api,
        pytest.raises(client.exceptions.ApiException) as denied,
    ):
        client.BatchV1Api(api).list_namespaced_job(namespace)
    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:nobody" in denied.value.body

    with cluster.api_client(cluster.service_account_token(namespace, "reader")) as api:
        allowed = cluster.wait_for(  # RBAC's authorizer cache catches up with the new binding
            lambda: client.BatchV1Api(api).list_namespaced_job(namespace),
            timeout=10,
            message="the bound ServiceAccount to list jobs",
        )
    assert allowed.items == []


@pytest.fixture
def widget_crd(cluster: Cluster, kube: client.ApiClient) -> Iterator[tuple[str, str]]:
    """A namespaced CRD ``Widget`` in a group unique to the test, with a CEL rule; removed after."""
    group = f"t{uuid.uuid4().hex[:8]}.example.com"
    ext = client.ApiextensionsV1Api(kube)
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["minReplicas", "maxReplicas"],
                "properties": {
                    "minReplicas": {"type": "integer"},
                    "maxReplicas": {"type": "integer"},
                },
                "x-kubernetes-validations": [
                    {
                        "rule": "self.minReplicas <= self.maxReplicas",
                        "message": "minReplicas must not exceed maxReplicas",
                    }
                ],
            }
        },
    }
    name = f"widgets.{group}"
    ext.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": schema},
                    }
                ],
            },
        }
    )

    def established() -> bool:
        crd = ext.read_custom_resource_definition(name)
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    cluster.wait_for(established, timeout=30, message=f"CRD {name} to be established")
    try:
        yield group, "widgets"
    finally:
        ext.delete_custom_resource_definition(name)


def test_crd_is_served_and_its_cel_rule_rejects_a_bad_object_with_422(
    cluster: Cluster, kube: client.ApiClient, namespace: str, widget_crd: tuple[str, str]
) -> None:
    group, plural = widget_crd
    custom = client.CustomObjectsApi(kube)

    def widget(name: str, low: int, high: int) -> dict:
        return {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"minReplicas": low, "maxReplicas": high},
        }

    created = cluster.wait_for(  # discovery of a new group can lag Established by a moment
        lambda: custom.create_namespaced_custom_object(
            group, "v1", namespace, plural, widget("good", 1, 3)
        ),
        timeout=15,
        message="the new CRD to be served",
    )
    assert created["spec"] == {"minReplicas": 1, "maxReplicas": 3}

    with pytest.raises(client.exceptions.ApiException) as rejected:
        custom.create_namespaced_custom_object(group, "v1", namespace, plural, widget("bad", 5, 2))

    assert rejected.value.status == 422
    assert "minReplicas must not exceed maxReplicas" in rejected.value.body
    assert "spec" in rejected.value.body
