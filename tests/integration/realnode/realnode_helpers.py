"""Names and helpers shared by the real-node tests."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from localcluster.realnode import NodeLayout

#: Tags ``hack/image`` gives the images it imports into the node.
IMAGE = "localhost/workflow:dev"
BUSYBOX_IMAGE = "localhost/busybox:workflow"
#: The uid the project's image runs as (its Dockerfile's USER, the chart's runAsUser).
IMAGE_UID = 10001


def node_containers(cluster: Any, namespace: str) -> list[dict[str, Any]]:
    """The containers containerd holds for pods of ``namespace`` (running or not)."""
    socket = NodeLayout.of(cluster.root).socket
    listed = subprocess.run(
        ["ctr", "--address", str(socket), "-n", "k8s.io", "containers", "ls", "-q"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.split()  # fmt: skip
    found = []
    for container_id in listed:
        info = subprocess.run(
            ["ctr", "--address", str(socket), "-n", "k8s.io", "containers", "info", container_id],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        if info.returncode != 0:
            continue
        labels = json.loads(info.stdout).get("Labels") or {}
        if labels.get("io.kubernetes.pod.namespace") == namespace:
            found.append({"id": container_id, "labels": labels})
    return found
