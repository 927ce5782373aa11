"""A real Kubernetes control plane on 127.0.0.1 for tests and the demo (dev tooling).

etcd, kube-apiserver and kube-controller-manager are built from the upstream
Go modules (``build.sh``) and run as local processes; a process kubelet
stands in for the node. Entry points: ``python -m localcluster
build|up|down|env|status`` and the functions re-exported here.
"""

from .controlplane import (
    ClusterError,
    ClusterInfo,
    default_cluster_dir,
    down,
    ensure_binaries,
    info,
    restart,
    status,
    up,
)

__all__ = [
    "ClusterError",
    "ClusterInfo",
    "default_cluster_dir",
    "down",
    "ensure_binaries",
    "info",
    "restart",
    "status",
    "up",
]
