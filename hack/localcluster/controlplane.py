"""Start and stop a real Kubernetes control plane on 127.0.0.1.

etcd, kube-apiserver and kube-controller-manager (Job, garbage-collector,
namespace and service-account controllers) run from the binaries that
``build.sh`` caches. The node is one of two kinds: the process kubelet
(``kubelet.py``, the fast double that runs a pod's command as a host process)
or, with ``node="containerd"``, a real kubelet with containerd and runc beside
kube-scheduler (``realnode.py``), which runs the project's images. Every
process runs in its own session, on free ports, with its log in the cluster
directory. The directory also keeps the state - pids with their kernel start
times, ports, kubeconfigs - so that ``down``, ``env`` and ``status`` work from
any other process, and ``down`` stops exactly what ``up`` started.

Layout of a cluster directory (default ``$HOME/.cache/workflow-cluster/default``,
or ``$WORKFLOW_CLUSTER_DIR``)::

    state.json          ports, processes, paths
    admin.kubeconfig    cluster-admin (token in group system:masters)
    pki/                CA, certificates, keys, tokens.csv
    etcd/               etcd data (kept across down/up; ``down --purge`` drops it)
    logs/*.log          one log per component
    kubelet/            the process kubelet's pods: container logs and files
    (the real node's containerd, CNI, kubelet root and configuration live under
    /var/lib/workflow-node/<hash of this directory>: see realnode.py)
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import pki as pkimod
from . import realnode
from .processes import ProcessRecord, adopt, free_port, is_running, port_is_free, stop

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"
K8S_VERSION = "v1.36.3"

ETCD_READY_TIMEOUT = 30.0
APISERVER_READY_TIMEOUT = 90.0
KCM_READY_TIMEOUT = 60.0
NODE_READY_TIMEOUT = 60.0
CONTAINERD_READY_TIMEOUT = 30.0
BUILD_TIMEOUT = 3600.0

KCM_CONTROLLERS = ",".join(
    [
        "job-controller",
        "garbage-collector-controller",
        "namespace-controller",
        "serviceaccount-controller",
        "serviceaccount-token-controller",
        "root-ca-certificate-publisher-controller",
        "ttl-after-finished-controller",
        "pod-garbage-collector-controller",
    ]
)

#: Start order; ``down`` goes the other way.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kubelet")
#: The same with the real node: containerd runs the containers the kubelet asks for.
REAL_NODE_COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "containerd",
    "kubelet",
)
NODE_KINDS = ("process", "containerd")
#: With the real node, Deployments (the chart's operator and buckets) run as real pods,
#: and the real kubelet leaves the not-ready taint to the node-lifecycle controller.
REAL_NODE_CONTROLLERS = "deployment-controller,replicaset-controller,node-lifecycle-controller"


def components(node: str) -> tuple[str, ...]:
    """The processes of a cluster whose node is of kind ``node``, in start order."""
    return REAL_NODE_COMPONENTS if node == "containerd" else COMPONENTS


Progress = Callable[[str], None]


class ClusterError(Exception):
    """The local cluster could not be built, started or reached."""


def default_cluster_dir() -> Path:
    env = os.environ.get("WORKFLOW_CLUSTER_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "workflow-cluster" / "default"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Layout:
    """Paths inside one cluster directory."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def pki(self) -> pkimod.Pki:
        return pkimod.Pki(dir=self.root / "pki")

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def node(self) -> realnode.NodeLayout:
        return realnode.NodeLayout.of(self.root)

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    def component_kubeconfig(self, client: str) -> Path:
        return self.root / "pki" / f"{client}.kubeconfig"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClusterInfo:
    """How to reach a running local cluster."""

    root: Path
    kubeconfig: Path
    api_url: str
    token: str
    ca_file: Path
    node_name: str
    ports: dict[str, int]
    bin_dir: Path
    #: ``process`` (the process kubelet) or ``containerd`` (the real node).
    node_kind: str = "process"

    def export_line(self) -> str:
        return f"export KUBECONFIG={self.kubeconfig}"


# -- state ---------------------------------------------------------------------------------


def _read_state(layout: Layout) -> dict[str, Any]:
    try:
        return json.loads(layout.state_file.read_text())
    except (OSError, ValueError):
        return {}


def _write_state(layout: Layout, state: dict[str, Any]) -> None:
    tmp = layout.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(layout.state_file)


def _records(state: dict[str, Any]) -> list[ProcessRecord]:
    return [ProcessRecord.from_json(item) for item in state.get("processes") or []]


@contextlib.contextmanager
def _locked(layout: Layout) -> Iterator[None]:
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def info(root: Path | None = None) -> ClusterInfo | None:
    """What ``up`` recorded for the cluster in ``root``, or None if it never ran there."""
    layout = Layout(root=root or default_cluster_dir())
    state = _read_state(layout)
    if not state.get("api_url"):
        return None
    return ClusterInfo(
        root=layout.root,
        kubeconfig=layout.admin_kubeconfig,
        api_url=state["api_url"],
        token=layout.pki.admin_token(),
        ca_file=layout.pki.ca_cert,
        node_name=state["node_name"],
        ports={k: int(v) for k, v in state["ports"].items()},
        bin_dir=Path(state["bin_dir"]),
        node_kind=state.get("node", "process"),
    )


# -- build ---------------------------------------------------------------------------------


def ensure_binaries(progress: Progress = print, *, real_node: bool = False) -> Path:
    """Directory holding the control-plane binaries; builds them when missing (slow once).

    ``real_node`` also builds the kubelet and kube-scheduler.
    """
    prebuilt = os.environ.get("WORKFLOW_K8S_BIN")
    if prebuilt:
        return Path(prebuilt)
    env = dict(os.environ, WORKFLOW_REAL_NODE="1") if real_node else None
    started = time.monotonic()
    lines: list[str] = []
    try:
        with subprocess.Popen(
            ["bash", str(BUILD_SCRIPT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=env,
        ) as proc:
            assert proc.stderr is not None and proc.stdout is not None
            watchdog = threading.Timer(BUILD_TIMEOUT, _kill_group, args=(proc.pid,))
            watchdog.start()
            try:
                for line in proc.stderr:
                    lines.append(line.rstrip())
                    if line.startswith("[build"):
                        progress(line.rstrip())
                output = proc.stdout.read().strip().splitlines()
                code = proc.wait()
            finally:
                watchdog.cancel()
    except OSError as error:
        raise ClusterError(f"could not run {BUILD_SCRIPT}: {error}") from error
    if time.monotonic() - started >= BUILD_TIMEOUT:
        raise ClusterError(
            f"building the control-plane binaries took over {BUILD_TIMEOUT:.0f} s; stopped"
        )
    if code != 0 or not output:
        detail = "\n".join(lines[-30:])
        raise ClusterError(f"building the control-plane binaries failed (exit {code}):\n{detail}")
    return Path(output[-1])


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


# -- readiness -----------------------------------------------------------------------------


def _http_get(
    url: str, *, ca_file: Path | None, token: str | None = None, timeout: float = 5
) -> str:
    """GET ``url``; without ``ca_file`` the server is not verified (the controller-manager's
    self-signed certificate, plain-HTTP etcd)."""
    if ca_file is None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=str(ca_file))
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an HTTP URL: {url}")
    request = urllib.request.Request(url)  # noqa: S310 - checked just above
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, context=context, timeout=timeout) as response:  # noqa: S310
        return response.read().decode()


def _wait_ready(
    name: str,
    record: ProcessRecord,
    log: Path,
    probe: Callable[[], bool],
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(record):
            raise ClusterError(f"{name} exited while starting; see {log}\n{_tail(log)}")
        try:
            if probe():
                return
        except (OSError, ValueError, urllib.error.URLError):
            pass
        time.sleep(0.25)
    raise ClusterError(f"{name} did not become ready in {timeout:.0f} s; see {log}\n{_tail(log)}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


def api_ready(api_url: str, ca_file: Path) -> bool:
    try:
        return _http_get(f"{api_url}/readyz", ca_file=ca_file).strip() == "ok"
    except (OSError, urllib.error.URLError):
        return False


# -- kubeconfigs ---------------------------------------------------------------------------


def _kubeconfig(server: str, ca_file: Path, user: dict[str, str], name: str = "local") -> str:
    user_lines = "\n".join(f"    {key}: {value}" for key, value in user.items())
    return f"""apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: {server}
    certificate-authority: {ca_file}
users:
- name: {name}
  user:
{user_lines}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}
current-context: {name}
"""


def _write_kubeconfigs(layout: Layout, api_url: str) -> None:
    pki = layout.pki
    layout.admin_kubeconfig.write_text(
        _kubeconfig(api_url, pki.ca_cert, {"token": pki.admin_token()})
    )
    layout.admin_kubeconfig.chmod(0o600)
    for client in pkimod.CLIENTS:
        path = layout.component_kubeconfig(client)
        user = {
            "client-certificate": str(pki.client_cert(client)),
            "client-key": str(pki.client_key(client)),
        }
        path.write_text(_kubeconfig(api_url, pki.ca_cert, user))
        path.chmod(0o600)


# -- up / down -----------------------------------------------------------------------------


def _choose_ports(previous: dict[str, Any]) -> dict[str, int]:
    ports: dict[str, int] = {}
    for name in ("etcd", "etcd_peer", "apiserver", "kcm", "kubelet", "scheduler"):
        old = previous.get(name)
        if old and port_is_free(int(old)) and int(old) not in ports.values():
            ports[name] = int(old)
            continue
        port = free_port()
        while port in ports.values():
            port = free_port()
        ports[name] = port
    return ports


def _start(
    layout: Layout, name: str, argv: list[str], env: dict[str, str] | None = None
) -> ProcessRecord:
    layout.logs.mkdir(parents=True, exist_ok=True)
    log = layout.log(name)
    with open(log, "ab") as handle:
        handle.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
        handle.flush()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=str(layout.root),
                env=env,
            )
        except OSError as error:
            raise ClusterError(f"could not start {name} ({argv[0]}): {error}") from error
    adopt(proc)
    return ProcessRecord.of(name, proc.pid)


def _etcd_argv(bin_dir: Path, layout: Layout, ports: dict[str, int]) -> list[str]:
    client = f"http://127.0.0.1:{ports['etcd']}"
    peer = f"http://127.0.0.1:{ports['etcd_peer']}"
    return [
        str(bin_dir / "etcd"),
        "--name=local",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=local={peer}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def _apiserver_argv(bin_dir: Path, layout: Layout, ports: dict[str, int]) -> list[str]:
    pki = layout.pki
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports['apiserver']}",
        f"--tls-cert-file={pki.apiserver_cert}",
        f"--tls-private-key-file={pki.apiserver_key}",
        f"--cert-dir={layout.root / 'apiserver'}",
        f"--client-ca-file={pki.ca_cert}",
        f"--token-auth-file={pki.tokens_csv}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        "--authorization-mode=Node,RBAC",
        f"--service-cluster-ip-range={pkimod.SERVICE_CLUSTER_IP_RANGE}",
        "--allow-privileged=true",
        "--endpoint-reconciler-type=none",
        f"--kubelet-client-certificate={pki.client_cert('admin')}",
        f"--kubelet-client-key={pki.client_key('admin')}",
        "--kubelet-preferred-address-types=InternalIP",
        "--profiling=false",
    ]


def _kcm_argv(
    bin_dir: Path, layout: Layout, ports: dict[str, int], node: str = "process"
) -> list[str]:
    kubeconfig = layout.component_kubeconfig("kube-controller-manager")
    controllers = KCM_CONTROLLERS
    if node == "containerd":
        controllers = f"{controllers},{REAL_NODE_CONTROLLERS}"
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports['kcm']}",
        f"--cert-dir={layout.root / 'kube-controller-manager'}",
        "--leader-elect=false",
        f"--controllers={controllers}",
        f"--service-account-private-key-file={layout.pki.sa_key}",
        f"--root-ca-file={layout.pki.ca_cert}",
        "--use-service-account-credentials=true",
        "--profiling=false",
    ]


def _kubelet_argv(layout: Layout, ports: dict[str, int]) -> list[str]:
    pki = layout.pki
    return [
        sys.executable,
        "-m",
        "localcluster.kubelet",
        f"--node-name={pkimod.NODE_NAME}",
        f"--kubeconfig={layout.component_kubeconfig('node')}",
        f"--binder-kubeconfig={layout.component_kubeconfig('kube-scheduler')}",
        f"--root-dir={layout.kubelet_root}",
        f"--api-port={ports['apiserver']}",
        f"--port={ports['kubelet']}",
        f"--tls-cert={pki.kubelet_cert}",
        f"--tls-key={pki.kubelet_key}",
        f"--client-ca={pki.ca_cert}",
        f"--log-file={layout.log('kubelet')}",
    ]


def _kubelet_env() -> dict[str, str]:
    env = dict(os.environ)
    package_parent = str(HERE.parent)
    paths = [package_parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _node_ready(api_url: str, ca_file: Path, token: str, node: str) -> bool:
    body = json.loads(_http_get(f"{api_url}/api/v1/nodes/{node}", ca_file=ca_file, token=token))
    conditions = body.get("status", {}).get("conditions") or []
    taints = body.get("spec", {}).get("taints") or []
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return ready and not any(t["key"] == "node.kubernetes.io/not-ready" for t in taints)


def _default_sa_exists(api_url: str, ca_file: Path, token: str) -> bool:
    url = f"{api_url}/api/v1/namespaces/default/serviceaccounts/default"
    return bool(_http_get(url, ca_file=ca_file, token=token))


def up(
    root: Path | None = None, *, node: str = "process", progress: Progress = print
) -> ClusterInfo:
    """Start the cluster in ``root`` (building binaries if needed); a running one is reused.

    ``node`` is ``process`` (the process kubelet) or ``containerd`` (a real
    kubelet with containerd, runc and kube-scheduler, running real images).
    """
    if node not in NODE_KINDS:
        raise ClusterError(f"unknown node kind {node!r}; choose one of {', '.join(NODE_KINDS)}")
    layout = Layout(root=root or default_cluster_dir())
    with _locked(layout):
        state = _read_state(layout)
        records = _records(state)
        wanted = components(node)
        if (
            records
            and state.get("node", "process") == node
            and all(is_running(r) for r in records)
            and len(records) == len(wanted)
        ):
            current = info(layout.root)
            if current and api_ready(current.api_url, current.ca_file):
                progress(f"cluster in {layout.root} is already up")
                return current
        if records or layout.node.root.exists():
            progress("stopping the leftovers of a previous run")
            _stop_all(layout, state, progress)
        return _start_all(layout, state, progress, node)


def _start_all(
    layout: Layout, state: dict[str, Any], progress: Progress, node: str = "process"
) -> ClusterInfo:
    t0 = time.monotonic()
    real = node == "containerd"
    if real:
        try:
            realnode.check_tools()
        except realnode.NodeError as error:
            raise ClusterError(str(error)) from error
    bin_dir = ensure_binaries(progress, real_node=real)
    needed = ["etcd", "kube-apiserver", "kube-controller-manager"]
    if real:
        needed += ["kube-scheduler", "kubelet"]
    for binary in needed:
        if not (bin_dir / binary).is_file():
            hint = (
                "WORKFLOW_K8S_BIN points there"
                if os.environ.get("WORKFLOW_K8S_BIN")
                else "run: hack/cluster build"
            )
            raise ClusterError(f"{bin_dir / binary} is missing; {hint}")
    try:
        pki = pkimod.ensure_pki(layout.root / "pki")
    except RuntimeError as error:
        raise ClusterError(str(error)) from error
    ports = _choose_ports(state.get("ports") or {})
    api_url = f"https://127.0.0.1:{ports['apiserver']}"
    state = {
        "version": 1,
        "kubernetes": K8S_VERSION,
        "bin_dir": str(bin_dir),
        "ports": ports,
        "api_url": api_url,
        "node_name": pkimod.NODE_NAME,
        "node": node,
        "kubeconfig": str(layout.admin_kubeconfig),
        "processes": [],
    }
    _write_state(layout, state)
    _write_kubeconfigs(layout, api_url)

    def started(record: ProcessRecord) -> ProcessRecord:
        state["processes"].append(record.to_json())
        _write_state(layout, state)
        return record

    try:
        progress(f"starting etcd on 127.0.0.1:{ports['etcd']}")
        etcd = started(_start(layout, "etcd", _etcd_argv(bin_dir, layout, ports)))
        etcd_health = f"http://127.0.0.1:{ports['etcd']}/health"
        _wait_ready(
            "etcd",
            etcd,
            layout.log("etcd"),
            lambda: '"true"' in _http_get(etcd_health, ca_file=None),
            ETCD_READY_TIMEOUT,
        )

        progress(f"starting kube-apiserver on {api_url}")
        apiserver = started(
            _start(layout, "kube-apiserver", _apiserver_argv(bin_dir, layout, ports))
        )
        _wait_ready(
            "kube-apiserver",
            apiserver,
            layout.log("kube-apiserver"),
            lambda: api_ready(api_url, pki.ca_cert),
            APISERVER_READY_TIMEOUT,
        )

        progress(f"starting kube-controller-manager on 127.0.0.1:{ports['kcm']}")
        kcm = started(
            _start(layout, "kube-controller-manager", _kcm_argv(bin_dir, layout, ports, node))
        )
        kcm_health = f"https://127.0.0.1:{ports['kcm']}/healthz"
        _wait_ready(
            "kube-controller-manager",
            kcm,
            layout.log("kube-controller-manager"),
            lambda: _http_get(kcm_health, ca_file=None).strip() == "ok",
            KCM_READY_TIMEOUT,
        )

        token = pki.admin_token()
        if real:
            _start_real_node(layout, bin_dir, ports, api_url, started, progress)
        else:
            progress(f"starting the process kubelet (node {pkimod.NODE_NAME})")
            kubelet = started(
                _start(layout, "kubelet", _kubelet_argv(layout, ports), env=_kubelet_env())
            )
            _wait_ready(
                "the process kubelet",
                kubelet,
                layout.log("kubelet"),
                lambda: _node_ready(api_url, pki.ca_cert, token, pkimod.NODE_NAME),
                NODE_READY_TIMEOUT,
            )
        _wait_ready(
            "the default ServiceAccount",
            kcm,
            layout.log("kube-controller-manager"),
            lambda: _default_sa_exists(api_url, pki.ca_cert, token),
            KCM_READY_TIMEOUT,
        )
    except BaseException:
        progress("start failed; stopping what was started")
        _stop_all(layout, state, progress)
        raise
    progress(f"cluster ready in {time.monotonic() - t0:.1f} s")
    result = info(layout.root)
    assert result is not None
    return result


def _start_real_node(
    layout: Layout,
    bin_dir: Path,
    ports: dict[str, int],
    api_url: str,
    started: Callable[[ProcessRecord], ProcessRecord],
    progress: Progress,
) -> None:
    """kube-scheduler, containerd with the images imported, and the real kubelet."""
    pki = layout.pki
    node = layout.node
    token = pki.admin_token()
    progress(f"starting kube-scheduler on 127.0.0.1:{ports['scheduler']}")
    scheduler = started(_start(layout, "kube-scheduler", _scheduler_argv(bin_dir, layout, ports)))
    _wait_ready(
        "kube-scheduler",
        scheduler,
        layout.log("kube-scheduler"),
        lambda: _http_get(f"https://127.0.0.1:{ports['scheduler']}/healthz", ca_file=None) == "ok",
        KCM_READY_TIMEOUT,
    )
    realnode.write_files(
        node,
        port=ports["kubelet"],
        ca_file=pki.ca_cert,
        cert=pki.kubelet_cert,
        key=pki.kubelet_key,
    )
    progress(f"starting containerd (socket {node.socket})")
    containerd = started(_start(layout, "containerd", realnode.containerd_argv(node)))
    _wait_ready(
        "containerd",
        containerd,
        layout.log("containerd"),
        lambda: _containerd_ready(node),
        CONTAINERD_READY_TIMEOUT,
    )
    try:
        realnode.ensure_images(node, progress)
    except realnode.NodeError as error:
        raise ClusterError(str(error)) from error
    progress(f"starting the kubelet (node {pkimod.NODE_NAME}, real containers)")
    kubelet = started(_start(layout, "kubelet", _real_kubelet_argv(bin_dir, layout)))
    _wait_ready(
        "the kubelet's registration",
        kubelet,
        layout.log("kubelet"),
        lambda: realnode.register_address(
            api_url, ca_file=pki.ca_cert, token=token, node_name=pkimod.NODE_NAME
        ),
        NODE_READY_TIMEOUT,
    )
    _wait_ready(
        "the real node",
        kubelet,
        layout.log("kubelet"),
        lambda: _node_ready(api_url, pki.ca_cert, token, pkimod.NODE_NAME),
        NODE_READY_TIMEOUT,
    )


def _containerd_ready(node: realnode.NodeLayout) -> bool:
    if not node.socket.exists():
        return False
    result = subprocess.run(
        ["ctr", "--address", str(node.socket), "version"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return result.returncode == 0


def _scheduler_argv(bin_dir: Path, layout: Layout, ports: dict[str, int]) -> list[str]:
    return realnode.scheduler_argv(
        bin_dir, kubeconfig=layout.component_kubeconfig("kube-scheduler"), port=ports["scheduler"]
    )


def _real_kubelet_argv(bin_dir: Path, layout: Layout) -> list[str]:
    return realnode.kubelet_argv(
        bin_dir,
        layout.node,
        kubeconfig=layout.component_kubeconfig("node"),
        node_name=pkimod.NODE_NAME,
    )


def _stop_all(layout: Layout, state: dict[str, Any], progress: Progress) -> None:
    records = _records(state)
    by_name = {record.name: record for record in records}
    for name in reversed(components(state.get("node", "process"))):
        record = by_name.get(name)
        if record is None:
            continue
        if is_running(record):
            progress(f"stopping {name} (pid {record.pid})")
        stop(record, grace=15.0 if name in ("kubelet", "containerd") else 10.0)
    _stop_containers(layout, progress)
    if layout.node.root.exists():
        realnode.cleanup(layout.node, progress)
    state["processes"] = []
    if layout.state_file.exists():
        _write_state(layout, state)


def _stop_containers(layout: Layout, progress: Progress) -> None:
    """Containers the kubelet left behind (it normally stops them itself)."""
    for marker in layout.kubelet_root.glob("pods/*/containers/*/process.json"):
        try:
            record = ProcessRecord.from_json(json.loads(marker.read_text()))
        except (OSError, ValueError, KeyError):
            continue
        if is_running(record):
            progress(f"stopping leftover container process {record.name} (pid {record.pid})")
        stop(record, grace=2.0)
        with contextlib.suppress(OSError):
            marker.unlink()


def _component_launch(
    layout: Layout, name: str, bin_dir: Path, ports: dict[str, int], node: str = "process"
) -> tuple[list[str], dict[str, str] | None]:
    """The command line and environment ``up`` starts component ``name`` with."""
    if name == "etcd":
        return _etcd_argv(bin_dir, layout, ports), None
    if name == "kube-apiserver":
        return _apiserver_argv(bin_dir, layout, ports), None
    if name == "kube-controller-manager":
        return _kcm_argv(bin_dir, layout, ports, node), None
    if name == "kube-scheduler":
        return _scheduler_argv(bin_dir, layout, ports), None
    if name == "containerd":
        return realnode.containerd_argv(layout.node), None
    if name == "kubelet" and node == "containerd":
        return _real_kubelet_argv(bin_dir, layout), None
    if name == "kubelet":
        return _kubelet_argv(layout, ports), _kubelet_env()
    raise ClusterError(f"unknown component {name!r}; known: {', '.join(components(node))}")


def _component_ready(layout: Layout, name: str, ports: dict[str, int], api_url: str) -> bool:
    """Whether component ``name`` answers as ``up`` expects it to."""
    pki = layout.pki
    if name == "etcd":
        return '"true"' in _http_get(f"http://127.0.0.1:{ports['etcd']}/health", ca_file=None)
    if name == "kube-apiserver":
        return api_ready(api_url, pki.ca_cert)
    if name == "kube-controller-manager":
        return _http_get(f"https://127.0.0.1:{ports['kcm']}/healthz", ca_file=None).strip() == "ok"
    if name == "kube-scheduler":
        return _http_get(f"https://127.0.0.1:{ports['scheduler']}/healthz", ca_file=None) == "ok"
    if name == "containerd":
        return _containerd_ready(layout.node)
    return _node_ready(api_url, pki.ca_cert, pki.admin_token(), pkimod.NODE_NAME)


def restart(
    component: str,
    root: Path | None = None,
    *,
    hard: bool = False,
    downtime: float = 0.0,
    progress: Progress = print,
) -> ProcessRecord:
    """Stop one running component by its recorded pid and start it again, same ports and flags.

    What a node reboot or a crash-looping control plane does to its clients:
    ``hard`` stops it with SIGKILL (no graceful shutdown) instead of SIGTERM,
    and ``downtime`` seconds pass before it starts again. Returns the new
    process's record, once the component answers again.
    """
    layout = Layout(root=root or default_cluster_dir())
    with _locked(layout):
        state = _read_state(layout)
        records = {record.name: record for record in _records(state)}
        record = records.get(component)
        if record is None or not is_running(record):
            raise ClusterError(f"{component} is not running in {layout.root}; run: hack/cluster up")
        ports = {key: int(value) for key, value in state["ports"].items()}
        argv, env = _component_launch(
            layout, component, Path(state["bin_dir"]), ports, state.get("node", "process")
        )
        progress(f"{'killing' if hard else 'stopping'} {component} (pid {record.pid})")
        if hard:
            _kill_group(record.pid)
        stop(record, grace=15.0 if component in ("kubelet", "containerd") else 10.0)
        if downtime > 0:
            time.sleep(downtime)
        progress(f"starting {component} again")
        started = _start(layout, component, argv, env)
        state["processes"] = [
            started.to_json() if item["name"] == component else item for item in state["processes"]
        ]
        _write_state(layout, state)
        _wait_ready(
            component,
            started,
            layout.log(component),
            lambda: _component_ready(layout, component, ports, state["api_url"]),
            APISERVER_READY_TIMEOUT,
        )
    return started


def down(root: Path | None = None, *, purge: bool = False, progress: Progress = print) -> None:
    """Stop, by recorded pid, everything ``up`` started in ``root``.

    ``purge`` also deletes the directory.
    """
    layout = Layout(root=root or default_cluster_dir())
    if not layout.root.exists():
        progress(f"no cluster in {layout.root}")
        return
    with _locked(layout):
        state = _read_state(layout)
        _stop_all(layout, state, progress)
    if purge:
        shutil.rmtree(layout.node.root, ignore_errors=True)
        shutil.rmtree(layout.root, ignore_errors=True)
        progress(f"removed {layout.root}")
    else:
        progress("stopped")


def status(root: Path | None = None) -> dict[str, Any]:
    """Per component: pid and whether it runs; plus whether the apiserver answers /readyz."""
    layout = Layout(root=root or default_cluster_dir())
    state = _read_state(layout)
    components = {
        record.name: {"pid": record.pid, "running": is_running(record)}
        for record in _records(state)
    }
    current = info(layout.root)
    return {
        "root": str(layout.root),
        "components": components,
        "ports": state.get("ports", {}),
        "api_url": state.get("api_url"),
        "ready": bool(current and components and api_ready(current.api_url, current.ca_file)),
        "kubeconfig": str(layout.admin_kubeconfig) if current else None,
    }
