"""Command line of the local cluster: ``python -m localcluster build|up|down|env|status``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .controlplane import (
    NODE_KINDS,
    REAL_NODE_COMPONENTS,
    ClusterError,
    default_cluster_dir,
    down,
    ensure_binaries,
    info,
    restart,
    status,
    up,
)


def _progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hack/cluster",
        description="A real Kubernetes control plane on 127.0.0.1 (etcd, kube-apiserver, "
        "kube-controller-manager) with a process kubelet as its node, or with "
        "--node containerd a real kubelet, containerd and kube-scheduler running real images.",
    )
    node_help = (
        "process: the process kubelet (fast, runs commands as host processes); "
        "containerd: a real kubelet with containerd and runc (needs root)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=f"cluster directory (default: $WORKFLOW_CLUSTER_DIR or {default_cluster_dir()})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser(
        "build", help="build the control-plane binaries into the cache"
    )
    build_parser.add_argument("--node", choices=NODE_KINDS, default="process", help=node_help)
    up_parser = commands.add_parser(
        "up", help="build if needed, start the cluster, print the export line"
    )
    up_parser.add_argument("--node", choices=NODE_KINDS, default="process", help=node_help)
    down_parser = commands.add_parser("down", help="stop everything 'up' started")
    down_parser.add_argument(
        "--purge", action="store_true", help="also delete the cluster directory"
    )
    commands.add_parser("env", help="print the export line for KUBECONFIG")
    commands.add_parser("status", help="print the state of each component as JSON")
    restart_parser = commands.add_parser(
        "restart", help="stop one component and start it again on the same ports"
    )
    restart_parser.add_argument("component", choices=REAL_NODE_COMPONENTS)
    restart_parser.add_argument(
        "--hard", action="store_true", help="SIGKILL it instead of a graceful stop"
    )
    args = parser.parse_args(argv)

    try:
        if args.command == "build":
            print(ensure_binaries(_progress, real_node=args.node == "containerd"))
        elif args.command == "up":
            print(up(args.dir, node=args.node, progress=_progress).export_line())
        elif args.command == "down":
            down(args.dir, purge=args.purge, progress=_progress)
        elif args.command == "env":
            recorded = info(args.dir)
            if recorded is None:
                print(
                    "error: no cluster has been started there; run: hack/cluster up",
                    file=sys.stderr,
                )
                return 1
            print(recorded.export_line())
        elif args.command == "restart":
            restart(args.component, args.dir, hard=args.hard, progress=_progress)
        elif args.command == "status":
            report = status(args.dir)
            print(json.dumps(report, indent=2))
            return 0 if report["ready"] else 1
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
