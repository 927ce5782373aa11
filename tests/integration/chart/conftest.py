"""Fixtures of the chart tests: helm, a release name per test, the chart's pods as processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from charting import ChartPods, Helm, find_helm, uninstall
from kubernetes import client

from fixtures.operator import Works, _delete_all_works
from fixtures.skipping import skip


@pytest.fixture(scope="session")
def helm_binary() -> str:
    found = find_helm()
    if found is None:
        message = "helm is not installed and hack/ensure-helm.sh could not install it"
        skip(message)
    return found


@pytest.fixture
def helm(helm_binary: str, cluster: Any) -> Helm:
    return Helm(helm_binary, cluster.kubeconfig)


@pytest.fixture
def chart_pods(cluster: Any, kube: client.ApiClient, tmp_path: Path) -> Iterator[ChartPods]:
    pods = ChartPods(cluster, kube, tmp_path)
    yield pods
    pods.stop()


@pytest.fixture
def release(helm: Helm, kube: client.ApiClient, namespace: str) -> Iterator[str]:
    """A release name for this test; whatever is still installed is uninstalled at the end."""
    name = "wf"
    yield name
    if helm.run("status", name, "--namespace", namespace, check=False).returncode == 0:
        uninstall(helm, kube, namespace, name, check=False)


@pytest.fixture
def helm_cli(helm_binary: str, tmp_path: Path) -> Helm:
    """helm for commands that need no cluster (lint, template); its kubeconfig points nowhere."""
    return Helm(helm_binary, tmp_path / "no-cluster.kubeconfig")


@pytest.fixture
def work_namespace(cluster: Any, kube: client.ApiClient) -> Iterator[str]:
    """Where the installed operator runs Works: never its own (release) namespace."""
    core = client.CoreV1Api(kube)
    name = f"works-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
def chart_works(kube: client.ApiClient, work_namespace: str, work_crd: Any) -> Iterator[Works]:
    """Work helpers for the Work namespace; leftover Works are deleted at the end."""
    helper = Works(client.CustomObjectsApi(kube), client.BatchV1Api(kube), work_namespace)
    yield helper
    _delete_all_works(helper)
