"""The process kubelet: the one test double of the local cluster.

No container runtime exists on the machines this cluster is for, so this
stands in for the node: it registers a Ready Node, renews its Lease, binds
pending pods to itself (no kube-scheduler runs), and runs each container of
each pod bound to it as a local process in its own process group, reporting
Pod status the way a kubelet does - phase, conditions, container states with
exit codes, reasons, start and finish times, termination messages and
restart counts - because the Job controller and the garbage collector above
it are real and act on exactly those fields. This module is the node
(registration, lease, binding, watches, events); ``pods.py`` runs pods,
``podstatus.py`` computes their status, ``logserver.py`` serves logs.

As a kubelet does: env from ``value`` (``$(VAR)`` expansion, ``$$`` escape),
``envFrom`` and ``secretKeyRef``/``configMapKeyRef``/``fieldRef``/
``resourceFieldRef`` (a missing non-optional source keeps the container
waiting with ``CreateContainerConfigError``, retried); ``$(VAR)`` in command
and args; ``workingDir``; the termination-message file at the container's
``terminationMessagePath`` (a private bind mount per container, so every
container has its own ``/dev/termination-log``), ``FallbackToLogsOnError``;
restart policies with CrashLoopBackOff delays; pod ``activeDeadlineSeconds``;
kill on deletion (SIGTERM to the process group, grace period, SIGKILL), a
terminal phase, then the final delete; ``kubectl logs``.

What it does not do, knowingly:

* **The image is ignored.** A container's ``command`` and ``args`` run on the
  host with the host's tools (``python3 -c ...``, ``sh -c ...``); a container
  without ``command`` cannot start (waiting, reason ``CreateContainerError``)
  because the image's entrypoint is unknown. The environment starts from a few
  of this process's variables (PATH, HOME, ...) in place of the image's.
* No isolation beyond the private mount namespace (which needs root; without
  it the termination-message file is named by ``$TERMINATION_MESSAGE_PATH``
  instead and a missing ``workingDir`` fails the start): processes share the
  host's network (pod IP = host IP = 127.0.0.1), users, PIDs and files. The
  default working directory is a scratch directory per pod, not ``/``.
* No volumes, probes (containers are ready once started), resource limits,
  security contexts, ephemeral containers, ``kubectl exec``/``port-forward``;
  the service-account token is not mounted.
* Scheduling honours ``nodeSelector`` only (affinity and taints are ignored).
* Stopping the kubelet stops its containers (a real one leaves them running);
  on start it reports containers it does not know as ``ContainerStatusUnknown``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import logging
import os
import queue
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from . import envs
from .logserver import log_server
from .pods import PodWorker, pod_key, pod_path, probe_private_mounts
from .podstatus import HOST_IP, TERMINAL, Run, now
from .rawapi import MERGE_PATCH, Api, ApiError, Informer

log = logging.getLogger("kubelet")

KUBELET_VERSION = "v1.36.3"
DEFAULT_SCHEDULER = "default-scheduler"
LEASE_DURATION = 40
LEASE_RENEW_INTERVAL = 10.0
NODE_STATUS_INTERVAL = 60.0
DEFAULT_PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH")


def micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass(kw_only=True)
class KubeletConfig:
    """Everything the process kubelet needs to know about its cluster."""

    node_name: str
    kubeconfig: Path
    """Credentials of the node (user ``system:node:<name>``)."""
    binder_kubeconfig: Path
    """Credentials allowed to bind pods (the scheduler's user)."""
    root_dir: Path
    api_host: str
    api_port: int
    port: int
    """Port of the HTTPS log endpoint, published as the node's kubelet endpoint."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    pass_env: tuple[str, ...] = DEFAULT_PASS_ENV


class ProcessKubelet:
    """The node: registration, lease, binding, pod workers, log endpoint."""

    def __init__(self, config: KubeletConfig) -> None:
        self.config = config
        self.api = Api(config.kubeconfig)
        self.binder_api = Api(config.binder_kubeconfig)
        self.stopping = threading.Event()
        self.workers: dict[str, PodWorker] = {}
        self.workers_lock = threading.Lock()
        self.private_mounts = probe_private_mounts(config.root_dir)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1000)
        self.unschedulable_reported: set[str] = set()
        self.node_labels = {
            "kubernetes.io/hostname": config.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
        }
        self.allocatable = node_resources(config.root_dir)
        self.started_at = now()

    # -- environment -------------------------------------------------------------

    def environment(self, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
        base = {name: os.environ[name] for name in self.config.pass_env if name in os.environ}
        base.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        base["HOSTNAME"] = pod["spec"].get("hostname") or pod["metadata"]["name"]
        host, port = self.config.api_host, self.config.api_port
        service_env = {
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": str(port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
            "KUBERNETES_PORT": f"tcp://{host}:{port}",
            f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}",
            f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
            f"KUBERNETES_PORT_{port}_TCP_PORT": str(port),
            f"KUBERNETES_PORT_{port}_TCP_ADDR": host,
        }
        if pod["spec"].get("enableServiceLinks") is False:
            service_env = {
                k: v for k, v in service_env.items() if k.startswith("KUBERNETES_SERVICE_")
            }
        env, skipped = envs.resolve(
            pod,
            container,
            fetch=self.fetch,
            service_env=service_env,
            node_allocatable=self.allocatable,
        )
        if skipped:
            self.event(
                pod,
                "Warning",
                "InvalidEnvironmentVariableNames",
                f"Keys [{', '.join(skipped)}] from the EnvFrom were skipped since they are invalid "
                "environment variable names.",
            )
        base.update(env)
        return base

    def fetch(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        resource = {"secret": "secrets", "configmap": "configmaps"}[kind]
        try:
            return self.api.get(f"/api/v1/namespaces/{namespace}/{resource}/{name}")
        except ApiError as error:
            if error.status == 404:
                return None
            if error.status == 403:
                # The node authorizer learns about a pod's references a moment after the binding.
                raise envs.ConfigError(
                    f'{kind} "{name}" is not readable by the node yet: {error.message}'
                ) from error
            raise

    # -- events --------------------------------------------------------------------

    def event(
        self, pod: dict[str, Any], kind: str, reason: str, message: str, component: str = "kubelet"
    ) -> None:
        meta = pod["metadata"]
        stamp = micro_now()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": component, "host": self.config.node_name},
            "firstTimestamp": stamp[:19] + "Z",
            "lastTimestamp": stamp[:19] + "Z",
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": self.config.node_name,
        }
        with contextlib.suppress(queue.Full):
            self.events.put_nowait(body)

    def _post_events(self) -> None:
        while not self.stopping.is_set():
            try:
                body = self.events.get(timeout=1)
            except queue.Empty:
                continue
            api = self.binder_api if body["source"]["component"] == DEFAULT_SCHEDULER else self.api
            try:
                api.request(
                    "POST",
                    f"/api/v1/namespaces/{body['metadata']['namespace']}/events",
                    body=body,
                    timeout=10,
                )
            except Exception as error:
                log.debug("event not recorded: %s", error)

    # -- node ----------------------------------------------------------------------

    def node_status(self) -> dict[str, Any]:
        stamp = now()
        conditions = [
            (
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            (
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ]
        uname = os.uname()
        return {
            "capacity": self.allocatable,
            "allocatable": self.allocatable,
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "reason": r,
                    "message": m,
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": self.started_at,
                }
                for t, s, r, m in conditions
            ],
            "addresses": [
                {"type": "InternalIP", "address": HOST_IP},
                {"type": "Hostname", "address": self.config.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.config.port}},
            "nodeInfo": {
                "machineID": machine_id(),
                "systemUUID": machine_id(),
                "bootID": boot_id(),
                "kernelVersion": uname.release,
                "osImage": os_image(),
                "containerRuntimeVersion": "process://local",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }

    def register_node(self) -> None:
        name = self.config.node_name
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": self.node_labels},
            "spec": {},
            "status": self.node_status(),
        }
        try:
            self.api.request("POST", "/api/v1/nodes", body=body)
            log.info("registered node %s", name)
        except ApiError as error:
            if error.status != 409:
                raise
            self.api.request(
                "PATCH",
                f"/api/v1/nodes/{name}",
                body={"metadata": {"labels": self.node_labels}},
                content_type=MERGE_PATCH,
            )
        self.api.request(
            "PATCH",
            f"/api/v1/nodes/{name}/status",
            body={"status": self.node_status()},
            content_type=MERGE_PATCH,
        )
        self.remove_not_ready_taint()

    def remove_not_ready_taint(self) -> None:
        node = self.api.get(f"/api/v1/nodes/{self.config.node_name}")
        taints = node.get("spec", {}).get("taints") or []
        kept = [
            t
            for t in taints
            if not t["key"].startswith("node.kubernetes.io/not-ready")
            and not t["key"].startswith("node.kubernetes.io/unreachable")
        ]
        if len(kept) != len(taints):
            self.api.request(
                "PATCH",
                f"/api/v1/nodes/{self.config.node_name}",
                body={"spec": {"taints": kept or None}},
                content_type=MERGE_PATCH,
            )
            log.info("removed the not-ready taint from node %s", self.config.node_name)

    def renew_lease(self) -> None:
        name = self.config.node_name
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
        spec = {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_DURATION,
            "renewTime": micro_now(),
        }
        try:
            lease = self.api.get(path)
        except ApiError as error:
            if error.status != 404:
                raise
            node = self.api.get(f"/api/v1/nodes/{name}")
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": name,
                    "namespace": "kube-node-lease",
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "Node",
                            "name": name,
                            "uid": node["metadata"]["uid"],
                        }
                    ],
                },
                "spec": spec,
            }
            self.api.request(
                "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", body=body
            )
            return
        lease["spec"].update(spec)
        self.api.request("PUT", path, body=lease)

    def _node_loop(self) -> None:
        registered = False
        last_status = 0.0
        while not self.stopping.is_set():
            try:
                if not registered:
                    self.register_node()
                    registered = True
                    last_status = time.monotonic()
                elif time.monotonic() - last_status >= NODE_STATUS_INTERVAL:
                    self.api.request(
                        "PATCH",
                        f"/api/v1/nodes/{self.config.node_name}/status",
                        body={"status": self.node_status()},
                        content_type=MERGE_PATCH,
                    )
                    self.remove_not_ready_taint()
                    last_status = time.monotonic()
                self.renew_lease()
            except ApiError as error:
                if error.status == 404:
                    registered = False  # someone deleted the Node: register again
                log.warning("node heartbeat failed: %s", error)
                self.stopping.wait(2)
                continue
            except Exception as error:
                log.warning("node heartbeat failed: %s", error)
                self.stopping.wait(2)
                continue
            self.stopping.wait(LEASE_RENEW_INTERVAL)

    # -- binding (in place of kube-scheduler) -----------------------------------------

    def fits(self, pod: dict[str, Any]) -> bool:
        selector = pod["spec"].get("nodeSelector") or {}
        return all(self.node_labels.get(key) == value for key, value in selector.items())

    def bind(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        spec = pod["spec"]
        if meta.get("deletionTimestamp") or spec.get("nodeName"):
            return
        if spec.get("schedulerName", DEFAULT_SCHEDULER) != DEFAULT_SCHEDULER:
            return
        if (pod.get("status") or {}).get("phase") in TERMINAL:
            return
        if not self.fits(pod):
            self.report_unschedulable(pod)
            return
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.config.node_name},
        }
        try:
            self.binder_api.request("POST", pod_path(pod, "/binding"), body=body)
        except ApiError as error:
            if error.status in (404, 409):
                return
            raise
        log.info("%s: bound to node %s", pod_key(pod), self.config.node_name)
        self.event(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {pod_key(pod)} to {self.config.node_name}",
            component=DEFAULT_SCHEDULER,
        )

    def report_unschedulable(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        if uid in self.unschedulable_reported:
            return
        self.unschedulable_reported.add(uid)
        message = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": now(),
        }
        try:
            self.binder_api.request(
                "PATCH",
                pod_path(pod, "/status"),
                body={"status": {"conditions": [condition]}},
                content_type="application/strategic-merge-patch+json",
            )
        except ApiError as error:
            log.warning("%s: could not report it unschedulable: %s", pod_key(pod), error)

    def _binder_loop(self, pending: queue.Queue[dict[str, Any]]) -> None:
        last_sweep = time.monotonic()
        while not self.stopping.is_set():
            try:
                pod = pending.get(timeout=1)
                self.bind(pod)
            except queue.Empty:
                pass
            except Exception as error:
                log.warning("binding failed: %s", error)
            if time.monotonic() - last_sweep > 5:
                last_sweep = time.monotonic()
                try:
                    listing = self.binder_api.get("/api/v1/pods", fieldSelector=UNSCHEDULED)
                    for item in listing.get("items") or []:
                        pending.put(item)
                except Exception as error:
                    log.warning("listing unscheduled pods failed: %s", error)

    # -- pod workers --------------------------------------------------------------------

    def on_pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        with self.workers_lock:
            worker = self.workers.get(uid)
            if kind == "DELETED":
                if worker is not None:
                    worker.forget()
                return
            if worker is None:
                worker = PodWorker(self, pod)
                self.workers[uid] = worker
                worker.start()
                return
        worker.update(pod)

    def on_pod_sync(self, pods: list[dict[str, Any]]) -> None:
        present = {pod["metadata"]["uid"] for pod in pods}
        with self.workers_lock:
            vanished = [worker for uid, worker in self.workers.items() if uid not in present]
        for worker in vanished:
            worker.forget()
        for pod in pods:
            self.on_pod_event("MODIFIED", pod)

    def worker_done(self, worker: PodWorker) -> None:
        with self.workers_lock:
            if self.workers.get(worker.uid) is worker:
                del self.workers[worker.uid]

    def find_run(self, namespace: str, name: str, container: str) -> tuple[PodWorker, Run] | None:
        with self.workers_lock:
            workers = list(self.workers.values())
        for worker in workers:
            meta = worker.pod["metadata"]
            if meta["namespace"] == namespace and meta["name"] == name:
                run = worker.runs.get(container)
                return (worker, run) if run else None
        return None

    # -- main -----------------------------------------------------------------------------

    def run(self) -> None:
        log.info(
            "process kubelet for node %s starting (private mount namespaces: %s)",
            self.config.node_name,
            "yes" if self.private_mounts else "no",
        )
        threads = [
            threading.Thread(target=self._node_loop, name="node", daemon=True),
            threading.Thread(target=self._post_events, name="events", daemon=True),
        ]
        pending: queue.Queue[dict[str, Any]] = queue.Queue()

        def queue_pod(kind: str, pod: dict[str, Any]) -> None:
            if kind != "DELETED":
                pending.put(pod)

        def queue_pods(pods: list[dict[str, Any]]) -> None:
            for pod in pods:
                pending.put(pod)

        threads.append(
            threading.Thread(target=self._binder_loop, args=(pending,), name="binder", daemon=True)
        )
        threads.append(
            Informer(
                self.binder_api,
                "/api/v1/pods",
                name="unscheduled-pods",
                query={"fieldSelector": UNSCHEDULED},
                on_event=queue_pod,
                on_sync=queue_pods,
                stop=self.stopping,
            )
        )
        threads.append(
            Informer(
                self.api,
                "/api/v1/pods",
                name="node-pods",
                query={"fieldSelector": f"spec.nodeName={self.config.node_name}"},
                on_event=self.on_pod_event,
                on_sync=self.on_pod_sync,
                stop=self.stopping,
            )
        )
        config = self.config
        server = None
        if config.tls_cert and config.tls_key:
            server = log_server(
                self,
                port=config.port,
                cert=config.tls_cert,
                key=config.tls_key,
                client_ca=config.client_ca,
            )
        if server is not None:
            threads.append(threading.Thread(target=server.serve_forever, name="logs", daemon=True))
        for thread in threads:
            thread.start()
        self.stopping.wait()
        if server is not None:
            server.shutdown()
        self.shutdown()

    def shutdown(self) -> None:
        """Stop every container this kubelet started (a real kubelet would leave them running)."""
        with self.workers_lock:
            workers = list(self.workers.values())
        killers = [
            threading.Thread(target=w.kill_all, kwargs={"grace": 2, "reason": "kubelet stopping"})
            for w in workers
        ]
        for thread in killers:
            thread.start()
        for thread in killers:
            thread.join(15)
        log.info("process kubelet stopped")


UNSCHEDULED = "spec.nodeName=,status.phase!=Succeeded,status.phase!=Failed"


# -- host facts ------------------------------------------------------------------------------


def node_resources(root: Path) -> dict[str, str]:
    memory_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    except OSError:
        pass
    disk = shutil.disk_usage(root if root.exists() else "/")
    return {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{memory_kib}Ki",
        "pods": "110",
        "ephemeral-storage": f"{disk.total // 1024}Ki",
    }


def _read(path: str, default: str) -> str:
    try:
        return Path(path).read_text().strip() or default
    except OSError:
        return default


def machine_id() -> str:
    return _read("/etc/machine-id", "0" * 32)


def boot_id() -> str:
    return _read("/proc/sys/kernel/random/boot_id", "")


def os_image() -> str:
    for line in _read("/etc/os-release", "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.kubelet", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--kubeconfig", type=Path, required=True, help="the node's credentials")
    parser.add_argument(
        "--binder-kubeconfig", type=Path, required=True, help="credentials that may bind pods"
    )
    parser.add_argument("--root-dir", type=Path, required=True, help="where pod logs and files go")
    parser.add_argument("--api-host", default=HOST_IP)
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--port", type=int, required=True, help="HTTPS port for kubectl logs")
    parser.add_argument("--tls-cert", type=Path)
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--client-ca", type=Path)
    parser.add_argument(
        "--pass-env",
        action="append",
        default=None,
        help=f"host variable handed to containers (default: {' '.join(DEFAULT_PASS_ENV)})",
    )
    parser.add_argument("--log-file", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        filename=args.log_file,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(threadName)s: %(message)s",
    )
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    kubelet = ProcessKubelet(
        KubeletConfig(
            node_name=args.node_name,
            kubeconfig=args.kubeconfig,
            binder_kubeconfig=args.binder_kubeconfig,
            root_dir=args.root_dir,
            api_host=args.api_host,
            api_port=args.api_port,
            port=args.port,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            client_ca=args.client_ca,
            pass_env=tuple(args.pass_env) if args.pass_env else DEFAULT_PASS_ENV,
        )
    )

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        kubelet.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    kubelet.run()


if __name__ == "__main__":
    main()
