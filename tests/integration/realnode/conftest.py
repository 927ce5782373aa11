"""Fixtures of the real-node tests: a cluster whose node is a real kubelet with containerd.

``real_cluster`` (session) starts its own control plane with kube-scheduler,
containerd, runc and the kubelet (``hack/cluster up --node containerd``),
building and importing the project's image first when its inputs changed.
Work pods run in real containers from that image, in the node's network
namespace so that they reach buckets on 127.0.0.1 (the node has no pod
network); the operator runs as a process beside them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from realnode_helpers import IMAGE, IMAGE_UID

from fixtures.cluster import Cluster, fresh_namespace, running_cluster
from fixtures.operator import OperatorProcess, Works, apply_work_crd, operators, works_in


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from running_cluster(tmp_path_factory.mktemp("realnode"), node="containerd")


@pytest.fixture(scope="session")
def real_crd(real_cluster: Cluster) -> dict[str, Any]:
    return apply_work_crd(real_cluster)


@pytest.fixture
def real_kube(real_cluster: Cluster) -> Iterator[client.ApiClient]:
    api = real_cluster.api_client()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def real_namespace(real_cluster: Cluster, real_kube: client.ApiClient) -> Iterator[str]:
    yield from fresh_namespace(real_cluster, real_kube)


@pytest.fixture
def real_works(
    real_kube: client.ApiClient, real_namespace: str, real_crd: dict[str, Any]
) -> Iterator[Works]:
    yield from works_in(real_kube, real_namespace)


@pytest.fixture
def real_operator(
    real_cluster: Cluster, real_namespace: str, real_crd: dict[str, Any], tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """``real_operator(buckets_url, **env)``: Work pods from the project's image, non-root."""
    defaults = {
        "WORKFLOW_OPERATOR_IMAGE": IMAGE,
        "WORKFLOW_OPERATOR_IMAGE_PULL_POLICY": "Never",
        "WORKFLOW_OPERATOR_HOST_NETWORK": "true",
        "WORKFLOW_OPERATOR_RUN_AS_USER": str(IMAGE_UID),
    }
    yield from operators(real_cluster, real_namespace, tmp_path, defaults)
