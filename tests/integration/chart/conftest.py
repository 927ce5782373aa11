"""Fixtures of the chart tests: helm, a release name per test, the chart's pods as processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from charting import ChartPods, Helm, find_helm, uninstall
from kubernetes import client

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
