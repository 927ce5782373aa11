"""The real node's own lifecycle: a crashed node's leftovers are cleaned by the next ``up``,
and ``down`` leaves no process, mount or cgroup behind.

Runs a cluster of its own (not the session's), since it kills one.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from kubernetes import client
from realnode_helpers import IMAGE, IMAGE_UID

from fixtures.cluster import Cluster
from localcluster import down, up
from localcluster.realnode import (
    NodeLayout,
    _cgroup_controllers,
    _mounts_under,
    _processes_mentioning,
)

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.realnode]

SLEEPER = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "sleeper"},
    "spec": {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": IMAGE_UID},
        "containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "Never",
                        "command": ["sleep", "600"]}],
    },
}  # fmt: skip


def leftovers(node: NodeLayout) -> dict[str, list]:
    cgroups = [c / node.cgroup_root.lstrip("/") for c in _cgroup_controllers()]
    return {
        "processes": _processes_mentioning(str(node.socket)),
        "mounts": _mounts_under(node.root) if node.root.exists() else [],
        "cgroups": [str(path) for path in cgroups if path.exists()],
    }


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_crashed_node_is_cleaned_by_the_next_up_and_down_leaves_nothing(tmp_path: Path):
    root = tmp_path / "crashing"
    node = NodeLayout.of(root)
    info = up(root, node="containerd", progress=print)
    try:
        cluster = Cluster(info)
        with cluster.api_client() as api:
            core = client.CoreV1Api(api)
            core.create_namespaced_pod("default", SLEEPER)
            cluster.wait_for(
                lambda: core.read_namespaced_pod("sleeper", "default").status.phase == "Running",
                timeout=120,
                message="the sleeper pod to run",
            )
        before = leftovers(node)
        assert before["processes"] and before["mounts"] and before["cgroups"], before
        # A crash: every component SIGKILLed at once; containers and shims live on.
        state = json.loads((root / "state.json").read_text())
        for record in state["processes"]:
            os.kill(record["pid"], signal.SIGKILL)
        time.sleep(1)
        shims = _processes_mentioning(str(node.socket))
        assert shims, "the container shims outlive the crash"

        again = up(root, node="containerd", progress=print)
        assert again.node_kind == "containerd"
        assert not any(alive(pid) for pid in shims), "the next up stopped the old shims"
        with Cluster(again).api_client() as api:
            nodes = client.CoreV1Api(api).list_node().items
            assert [n.metadata.name for n in nodes] == [info.node_name]
    finally:
        down(root, purge=True, progress=print)
    after = leftovers(node)
    assert after == {"processes": [], "mounts": [], "cgroups": []}, after
    assert not root.exists() and not node.root.exists()
