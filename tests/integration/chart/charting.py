"""Helm and the chart's own pods: helpers of the chart tests (fixtures are in conftest.py).

``find_helm`` finds the helm binary (``WORKFLOW_HELM``, else the cache that
``hack/ensure-helm.sh`` fills, running that script when the cache is empty)
and runs it against the local control plane. ``ChartPods`` starts the
operator and buckets the way the chart's Deployments describe them: the
container's command, and its environment resolved as a kubelet does
(``value`` with ``$(VAR)`` expansion, ``secretKeyRef`` from the real Secrets)
- as local processes, because this cluster has no Deployment controller and
its process kubelet mounts no volumes (no ServiceAccount token, no
PersistentVolumeClaim). What a cluster would provide is replaced, and only
that: the operator's API credentials are a kubeconfig holding a token of the
chart's ServiceAccount (TokenRequest, exactly what the mounted token would
be), cluster DNS names become 127.0.0.1 ports, the SQLite file sits in a
temporary folder, and the image's ``workflow`` command is this interpreter's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from fixtures.helm import CHART, ROOT, find_helm, in_ci
from localcluster import envs

__all__ = ["CHART", "ROOT", "find_helm", "in_ci"]


@dataclass
class Helm:
    """The helm binary, pointed at one kubeconfig."""

    binary: str
    kubeconfig: Path
    chart: str = str(CHART)

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    def template(self, *args: str, namespace: str = "workflow", release: str = "wf") -> str:
        return self.run("template", release, self.chart, "--namespace", namespace, *args).stdout

    def documents(
        self, *args: str, namespace: str = "workflow", release: str = "wf"
    ) -> list[dict[str, Any]]:
        """The rendered objects (comment-only documents dropped)."""
        text = self.template(*args, namespace=namespace, release=release)
        return [doc for doc in yaml.safe_load_all(text) if doc]


def sa_kubeconfig(cluster: Any, namespace: str, name: str, path: Path) -> Path:
    """A kubeconfig that authenticates as ServiceAccount ``namespace/name`` (TokenRequest)."""
    token = cluster.service_account_token(namespace, name)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": cluster.api_url,
                    "certificate-authority": str(cluster.ca_file),
                },
            }
        ],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": "sa", "context": {"cluster": "local", "user": name, "namespace": namespace}}
        ],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def container_of(kube: client.ApiClient, namespace: str, deployment: str) -> tuple[dict, dict]:
    """The pod template and first container of a Deployment, as plain dicts."""
    found = client.AppsV1Api(kube).read_namespaced_deployment(deployment, namespace)
    template = kube.sanitize_for_serialization(found.spec.template)
    template.setdefault("metadata", {})["namespace"] = namespace
    return template, template["spec"]["containers"][0]


def kubelet_env(
    kube: client.ApiClient, namespace: str, template: dict, container: dict
) -> dict[str, str]:
    """The container's environment as a kubelet resolves it (Secrets read from the cluster)."""
    core = client.CoreV1Api(kube)

    def fetch(kind: str, ns: str, name: str) -> dict[str, Any] | None:
        try:
            if kind == "secret":
                return kube.sanitize_for_serialization(core.read_namespaced_secret(name, ns))
            return kube.sanitize_for_serialization(core.read_namespaced_config_map(name, ns))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    env, _ = envs.resolve(template, container, fetch=fetch, service_env={}, node_allocatable={})
    return env


def host_command(command: list[str]) -> list[str]:
    """The image's ``workflow`` entry point is this interpreter's ``workflow`` module here."""
    if command and command[0] == "workflow":
        return [sys.executable, "-m", "workflow", *command[1:]]
    return command


@dataclass
class ChartProcess:
    """One of the chart's containers run as a local process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ChartProcess:
        base = {
            k: v
            for k, v in os.environ.items()
            if k in ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH")
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env={**base, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.log_path.parent,
            )
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class ChartPods:
    """Starts the chart's buckets and operator from their Deployments in one release."""

    cluster: Any
    kube: client.ApiClient
    tmp: Path
    started: list[ChartProcess] = field(default_factory=list)

    def buckets(self, namespace: str, release: str) -> tuple[ChartProcess, str]:
        """buckets from its Deployment; returns the process and its URL."""
        template, container = container_of(self.kube, namespace, f"{release}-workflow-buckets")
        env = kubelet_env(self.kube, namespace, template, container)
        port = free_port()
        # What the cluster would provide: the pod's own address and the claim's volume.
        env["WORKFLOW_BUCKETS_HOST"], env["WORKFLOW_BUCKETS_PORT"] = "127.0.0.1", str(port)
        if env["WORKFLOW_BUCKETS_DATABASE"].startswith("sqlite:////data/"):
            env["WORKFLOW_BUCKETS_DATABASE"] = (
                f"sqlite:///{self.tmp / f'{release}-buckets.sqlite3'}"
            )
        env["HOME"] = str(self.tmp)
        process = ChartProcess(
            "buckets", host_command(container["command"]), env, self.tmp / f"{release}-buckets.log"
        ).start()
        self.started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if process.process and process.process.poll() is not None:
                raise AssertionError(f"buckets exited:\n{process.log()[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return process, url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"buckets did not answer in 30 s:\n{process.log()[-3000:]}")
            time.sleep(0.2)

    def operator(
        self, namespace: str, release: str, buckets_url: str, **overrides: str
    ) -> tuple[ChartProcess, int]:
        """The operator from its Deployment, authenticated as the chart's ServiceAccount."""
        template, container = container_of(self.kube, namespace, f"{release}-workflow-operator")
        env = kubelet_env(self.kube, namespace, template, container)
        account = template["spec"]["serviceAccountName"]
        env["KUBECONFIG"] = str(
            sa_kubeconfig(self.cluster, namespace, account, self.tmp / f"{release}-sa.kubeconfig")
        )
        # Cluster DNS names and the image's runner are not available here.
        env["WORKFLOW_OPERATOR_BUCKETS_URL"] = env["WORKFLOW_OPERATOR_JOB_BUCKETS_URL"] = (
            buckets_url
        )
        env["WORKFLOW_OPERATOR_RUNNER_COMMAND"] = json.dumps(
            [sys.executable, "-m", "workflow", "run"]
        )
        env["HOME"] = str(self.tmp)
        env.update(overrides)
        port = free_port()
        argv = [
            f"--liveness=http://127.0.0.1:{port}/healthz" if arg.startswith("--liveness=") else arg
            for arg in host_command(container["command"])
        ]
        process = ChartProcess("operator", argv, env, self.tmp / f"{release}-operator.log").start()
        self.started.append(process)
        return process, port

    def stop(self) -> None:
        for process in reversed(self.started):
            process.stop()


def uninstall(
    helm: Helm, kube: client.ApiClient, namespace: str, release: str, check: bool = True
) -> None:
    """``helm uninstall``, doing the one job of a controller this cluster does not run.

    The local kube-controller-manager runs no PVC-protection controller, so the
    ``kubernetes.io/pvc-protection`` finalizer would keep the deleted claim
    Terminating forever; no pod uses the claim here, and that controller would
    remove the finalizer for exactly that reason.
    """
    helm.run("uninstall", release, "--namespace", namespace, check=check, timeout=120)
    core = client.CoreV1Api(kube)
    selector = f"app.kubernetes.io/instance={release}"
    for claim in core.list_namespaced_persistent_volume_claim(
        namespace, label_selector=selector
    ).items:
        if claim.metadata.deletion_timestamp is not None:
            core.patch_namespaced_persistent_volume_claim(
                claim.metadata.name, namespace, {"metadata": {"finalizers": None}}
            )
