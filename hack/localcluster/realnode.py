"""The real node: containerd with runc, a real kubelet and kube-scheduler.

The process kubelet runs a pod's command as a host process and ignores the
image; this node runs real containers from real images, so whatever a cluster
enforces on a container (read-only root, uid, seccomp, memory limits and
``OOMKilled``, ``$(VAR)`` expansion, probes, image pull policy) is the
kubelet's own doing. It uses Debian's containerd (1.6) and runc, the kubelet
and kube-scheduler built from the same Kubernetes modules as the control
plane, and the images ``hack/image`` builds and imports.

Four things this kind of machine needs that a normal node does not:

* cgroup v1 only: ``failCgroupV1: false`` with the ``cgroupfs`` driver;
* root without CAP_SYS_RESOURCE: containerd's ``restrict_oom_score_adj``;
* the kubelet refuses ``--node-ip 127.0.0.1`` and otherwise reports the
  machine's own interface address: it runs with ``--cloud-provider=external``
  and ``up`` does what a cloud controller would, once: sets the node's address
  to ``InternalIP 127.0.0.1`` (the kubelet then keeps it) and removes the
  ``uninitialized`` taint;
* containerd wants a CNI network: a plugin that creates nothing and answers
  with the pod's loopback. Only 127.0.0.0/8 is ever used: pods that talk to
  host services (buckets, the apiserver) use ``hostNetwork``, and the node's
  resolver file names 127.0.0.1 so pods never ask the machine's resolver.

Everything lives under ``/var/lib/workflow-node/<hash>`` (``$WORKFLOW_NODE_DIR``),
the hash being that of the cluster directory: Unix socket paths must stay under
108 bytes however deep the cluster directory is, and containerd's snapshots want
a real disk. Containers run in the cgroup subtree ``/workflow-node-<hash>`` of
every controller. ``cleanup`` stops
containers and shims, unmounts what the kubelet and containerd mounted, and
removes the cgroups: ``down`` calls it, and so does the next ``up`` after a
crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMAGE_SCRIPT = HERE.parent / "image"
CNI_PLUGIN = HERE / "cni-loopback.sh"
CGROUP_FS = Path("/sys/fs/cgroup")
PAUSE_IMAGE = "localhost/pause:workflow"
IMAGE_BUILD_TIMEOUT = 1800.0

#: Debian packages the node needs, by the command each provides.
TOOLS = {"containerd": "containerd", "runc": "runc", "ctr": "containerd", "buildah": "buildah",
         "mmdebstrap": "mmdebstrap", "nsenter": "util-linux", "ip": "iproute2"}  # fmt: skip

Progress = Callable[[str], None]


class NodeError(Exception):
    """The real node could not be prepared, started or cleaned."""


def _digest(cluster_root: Path) -> str:
    return hashlib.sha256(str(cluster_root.resolve()).encode()).hexdigest()[:8]


@dataclasses.dataclass(frozen=True, kw_only=True)
class NodeLayout:
    """Paths of the real node of one cluster directory."""

    root: Path
    #: Names the node's cgroup subtree.
    digest: str

    @classmethod
    def of(cls, cluster_root: Path) -> NodeLayout:
        """The node of the cluster in ``cluster_root``: short paths, one per cluster."""
        base = Path(os.environ.get("WORKFLOW_NODE_DIR") or "/var/lib/workflow-node")
        digest = _digest(cluster_root)
        return cls(root=base / digest, digest=digest)

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd" / "state"

    @property
    def socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd" / "config.toml"

    @property
    def cni_bin(self) -> Path:
        return self.root / "cni" / "bin"

    @property
    def cni_conf(self) -> Path:
        return self.root / "cni" / "conf"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet-config.yaml"

    @property
    def resolv_conf(self) -> Path:
        return self.root / "resolv.conf"

    @property
    def cgroup_root(self) -> str:
        """The node's cgroup subtree, unique per cluster directory."""
        return f"/workflow-node-{self.digest}"


def check_tools() -> None:
    """Fail with one sentence naming the first missing tool and its package."""
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise NodeError(
            f"the real node needs {', '.join(missing)}; install with: "
            f"apt-get install {' '.join(missing)}"
        )
    if os.geteuid() != 0:
        raise NodeError("the real node runs containerd and the kubelet, which need root")


# -- configuration -------------------------------------------------------------------------


def containerd_config(node: NodeLayout) -> str:
    runc = shutil.which("runc") or "runc"
    return f"""version = 2
root = "{node.containerd_root}"
state = "{node.containerd_state}"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{node.socket}"

[ttrpc]
  address = "{node.socket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_hugetlb_controller = true
  tolerate_missing_hugetlb_controller = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{runc}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{node.cni_bin}"
    conf_dir = "{node.cni_conf}"
    max_conf_num = 1

[plugins."io.containerd.internal.v1.opt"]
  path = "{node.root / "containerd" / "opt"}"
"""


CNI_CONFLIST = {
    "cniVersion": "0.4.0",
    "name": "loopback-only",
    "plugins": [{"type": "workflow-loopback"}],
}


def kubelet_config(node: NodeLayout, *, port: int, ca_file: Path, cert: Path, key: Path) -> str:
    """The KubeletConfiguration (JSON is YAML) of the real node."""
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # cgroup v1 here; kubelet >= 1.35 refuses it unless told otherwise.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": node.cgroup_root,
        "containerRuntimeEndpoint": f"unix://{node.socket}",
        "address": "127.0.0.1",
        "port": port,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "tlsCertFile": str(cert),
        "tlsPrivateKeyFile": str(key),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "resolvConf": str(node.resolv_conf),
        "failSwapOn": False,
        "serializeImagePulls": False,
        # Images are imported, never pulled: garbage collection must not remove them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "nodeStatusUpdateFrequency": "4s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "20s",
        "maxPods": 110,
        "containerLogMaxSize": "10Mi",
        "shutdownGracePeriod": "0s",
    }
    return json.dumps(config, indent=2)


def write_files(node: NodeLayout, *, port: int, ca_file: Path, cert: Path, key: Path) -> None:
    """Every configuration file of the node, rewritten on each ``up``."""
    for path in (node.containerd_root, node.containerd_state, node.cni_bin, node.cni_conf,
                 node.kubelet_root):  # fmt: skip
        path.mkdir(parents=True, exist_ok=True)
    node.containerd_config.write_text(containerd_config(node))
    plugin = node.cni_bin / "workflow-loopback"
    shutil.copyfile(CNI_PLUGIN, plugin)
    plugin.chmod(0o755)
    # containerd also runs "loopback" for the pod's lo; the same plugin answers.
    shutil.copyfile(CNI_PLUGIN, node.cni_bin / "loopback")
    (node.cni_bin / "loopback").chmod(0o755)
    (node.cni_conf / "10-workflow.conflist").write_text(json.dumps(CNI_CONFLIST))
    node.resolv_conf.write_text("nameserver 127.0.0.1\noptions ndots:1 attempts:1 timeout:1\n")
    node.kubelet_config.write_text(
        kubelet_config(node, port=port, ca_file=ca_file, cert=cert, key=key)
    )
    for controller in _cgroup_controllers():
        (controller / node.cgroup_root.lstrip("/")).mkdir(exist_ok=True)


def containerd_argv(node: NodeLayout) -> list[str]:
    return [shutil.which("containerd") or "containerd", "--config", str(node.containerd_config)]


def kubelet_argv(bin_dir: Path, node: NodeLayout, *, kubeconfig: Path, node_name: str) -> list[str]:
    return [
        str(bin_dir / "kubelet"),
        f"--config={node.kubelet_config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={node.kubelet_root}",
        f"--cert-dir={node.root / 'kubelet-pki'}",
        f"--hostname-override={node_name}",
        # Addresses come from ``register_address`` (127.0.0.1), as from a cloud provider.
        "--cloud-provider=external",
        "--v=1",
    ]


def scheduler_argv(bin_dir: Path, *, kubeconfig: Path, port: int) -> list[str]:
    return [
        str(bin_dir / "kube-scheduler"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--leader-elect=false",
        "--profiling=false",
    ]


# -- images --------------------------------------------------------------------------------


def ensure_images(node: NodeLayout, progress: Progress) -> None:
    """Build the images if their inputs changed (``hack/image build``), then import them."""
    _run_image_script(["build", str(node.socket)], progress)


def _run_image_script(args: list[str], progress: Progress) -> None:
    lines: list[str] = []
    with subprocess.Popen(
        ["bash", str(IMAGE_SCRIPT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as proc:
        assert proc.stdout is not None
        deadline = time.monotonic() + IMAGE_BUILD_TIMEOUT
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("[image"):
                progress(line.rstrip())
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait()
    if code != 0:
        detail = "\n".join(lines[-20:])
        raise NodeError(f"hack/image {args[0]} failed (exit {code}):\n{detail}")


# -- registration --------------------------------------------------------------------------


def _request(
    url: str, *, ca_file: Path, token: str, method: str = "GET", body: bytes | None = None,
    content_type: str = "application/json",
) -> dict:  # fmt: skip
    if not url.startswith("https://"):
        raise ValueError(f"not an HTTPS URL: {url}")
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - checked
    request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", content_type)
    context = ssl.create_default_context(cafile=str(ca_file))
    with urllib.request.urlopen(request, context=context, timeout=10) as response:  # noqa: S310
        return json.loads(response.read() or b"{}")


UNINITIALIZED_TAINT = "node.cloudprovider.kubernetes.io/uninitialized"


def _merge_patch(url: str, patch: dict, *, ca_file: Path, token: str) -> None:
    body = json.dumps(patch).encode()
    _request(url, ca_file=ca_file, token=token, method="PATCH", body=body,
             content_type="application/merge-patch+json")  # fmt: skip


def register_address(api_url: str, *, ca_file: Path, token: str, node_name: str) -> bool:
    """Initialize the registered node as a cloud controller would; False until it registered.

    Its only address becomes ``InternalIP 127.0.0.1`` (the kubelet, with an
    external cloud provider, keeps addresses it finds set) and the
    ``uninitialized`` taint goes.
    """
    url = f"{api_url}/api/v1/nodes/{node_name}"
    try:
        current = _request(url, ca_file=ca_file, token=token)
    except OSError:
        return False
    addresses = current.get("status", {}).get("addresses") or []
    settled = True
    if {"type": "InternalIP", "address": "127.0.0.1"} not in addresses:
        settled = False
        patch = {"status": {"addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": node_name},
        ]}}  # fmt: skip
        _merge_patch(f"{url}/status", patch, ca_file=ca_file, token=token)
    taints = current.get("spec", {}).get("taints") or []
    kept = [taint for taint in taints if taint.get("key") != UNINITIALIZED_TAINT]
    if len(kept) != len(taints):
        settled = False
        patch = {"spec": {"taints": kept or None}}
        _merge_patch(url, patch, ca_file=ca_file, token=token)
    return settled


# -- cleanup -------------------------------------------------------------------------------


def _cgroup_controllers() -> list[Path]:
    try:
        return [p for p in CGROUP_FS.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if text.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def _kill_cgroup_tree(path: Path) -> None:
    for procs in path.rglob("cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            for pid in procs.read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)


def _remove_cgroup_tree(path: Path) -> bool:
    """rmdir every cgroup under ``path``, deepest first; True when it is gone."""
    if not path.exists():
        return True
    for directory in sorted(
        (p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
    ):
        with contextlib.suppress(OSError):
            directory.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()
    return not path.exists()


def cleanup(node: NodeLayout, progress: Progress) -> None:
    """Stop containers and shims, unmount, remove cgroups: what a (crashed) node left."""
    shims = _processes_mentioning(str(node.socket))
    if shims:
        progress(f"stopping {len(shims)} leftover container shim(s)")
    for pid in shims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    cgroups = [c / node.cgroup_root.lstrip("/") for c in _cgroup_controllers()]
    for path in cgroups:
        _kill_cgroup_tree(path)
    deadline = time.monotonic() + 10
    remaining = cgroups
    while remaining and time.monotonic() < deadline:
        remaining = [path for path in remaining if not _remove_cgroup_tree(path)]
        if remaining:
            time.sleep(0.2)
    if remaining:
        progress(f"could not remove cgroups {', '.join(map(str, remaining))}")
    mounts = _mounts_under(node.root) if node.root.exists() else []
    if mounts:
        progress(f"unmounting {len(mounts)} mount(s) under {node.root}")
    for point in mounts:
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)
