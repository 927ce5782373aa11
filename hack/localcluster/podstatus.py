"""Pod status as a kubelet computes it, from what the process kubelet knows of its containers.

Pure functions over the pod object and the per-container ``Run`` records: the
phase (the kubelet's ``getPhase``), container statuses, and the conditions
(``PodReadyToStartContainers``, ``Initialized``, ``ContainersReady``,
``Ready``), merged into the pod's current status so fields owned by others
(``qosClass``, ``PodScheduled``, ``DisruptionTarget`` ...) are kept.
"""

from __future__ import annotations

import dataclasses
import datetime
import subprocess
import threading
from pathlib import Path
from typing import Any

HOST_IP = "127.0.0.1"
TERMINAL = ("Succeeded", "Failed")
CONDITION_ORDER = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(kw_only=True)
class Run:
    """One container of one pod as this kubelet knows it; ``state`` is the API's ContainerState."""

    name: str
    image: str
    init: bool
    restart_count: int = 0
    state: dict[str, Any] = dataclasses.field(default_factory=dict)
    last_state: dict[str, Any] = dataclasses.field(default_factory=dict)
    container_id: str = ""
    proc: subprocess.Popen[bytes] | None = None
    exited: threading.Event = dataclasses.field(default_factory=threading.Event)
    retry_at: float = 0.0
    """Monotonic time before which it must not be (re)started."""
    retry_delay: float = 0.0
    restart_pending: bool = False
    log_path: Path | None = None

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def terminated(self) -> dict[str, Any] | None:
        return self.state.get("terminated")

    @property
    def succeeded(self) -> bool:
        term = self.terminated
        return term is not None and term.get("exitCode") == 0


def is_sidecar(container: dict[str, Any]) -> bool:
    return container.get("restartPolicy") == "Always"


def pod_phase(spec: dict[str, Any], runs: dict[str, Run]) -> str:
    """The kubelet's getPhase for a pod that is not (yet) known to be terminal."""
    policy = spec.get("restartPolicy", "Always")
    for container in spec.get("initContainers") or []:
        if is_sidecar(container):
            continue
        run = runs.get(container["name"])
        if run is not None and run.succeeded:
            continue
        if run is not None and run.terminated is not None and policy == "Never":
            return "Failed"
        return "Pending"
    running = stopped = succeeded = waiting = 0
    for container in spec["containers"]:
        run = runs.get(container["name"])
        if run is None or (not run.state and not run.last_state):
            waiting += 1
        elif run.running:
            running += 1
        elif run.terminated is not None:
            stopped += 1
            succeeded += run.succeeded
        elif run.last_state.get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Running" if policy == "OnFailure" else "Failed"
    return "Pending"


def container_status(
    container: dict[str, Any], run: Run | None, *, init: bool, initializing: bool
) -> dict[str, Any]:
    """The ContainerStatus of one container."""
    creating = "PodInitializing" if initializing and not init else "ContainerCreating"
    status: dict[str, Any] = {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "ready": False,
        "started": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": creating}},
        "lastState": {},
    }
    if run is None:
        return status
    if run.container_id:
        status["containerID"] = run.container_id
    status["restartCount"] = run.restart_count
    if run.state:
        status["state"] = run.state
    status["lastState"] = run.last_state
    status["started"] = run.running
    status["ready"] = run.running if not init or is_sidecar(container) else run.succeeded
    return status


def _conditions(
    phase: str, pending_init: list[str], initializing: bool, unready: list[str]
) -> dict[str, dict[str, Any]]:
    conditions: dict[str, dict[str, Any]] = {"PodReadyToStartContainers": {"status": "True"}}
    if phase == "Succeeded":
        conditions["Initialized"] = {"status": "True", "reason": "PodCompleted"}
    elif initializing:
        conditions["Initialized"] = {
            "status": "False",
            "reason": "ContainersNotInitialized",
            "message": f"containers with incomplete status: [{' '.join(pending_init)}]",
        }
    else:
        conditions["Initialized"] = {"status": "True"}
    if phase in TERMINAL:
        reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        ready: dict[str, Any] = {"status": "False", "reason": reason}
    elif unready:
        ready = {
            "status": "False",
            "reason": "ContainersNotReady",
            "message": f"containers with unready status: [{' '.join(unready)}]",
        }
    else:
        ready = {"status": "True"}
    conditions["ContainersReady"] = dict(ready)
    conditions["Ready"] = dict(ready)
    return conditions


def _merge_conditions(
    previous: list[dict[str, Any]], ours: dict[str, dict[str, Any]], generation: int | None
) -> list[dict[str, Any]]:
    """Ours replace theirs by type; a condition keeps its transition time while its status holds."""
    before = {c["type"]: c for c in previous}
    merged: list[dict[str, Any]] = []
    for kind, fields in ours.items():
        condition = {"type": kind, **fields, "lastProbeTime": None}
        if generation is not None:
            condition["observedGeneration"] = generation
        old = before.get(kind)
        same = old is not None and old.get("status") == condition["status"]
        condition["lastTransitionTime"] = old.get("lastTransitionTime") if same and old else now()
        merged.append(condition)
    merged += [c for kind, c in before.items() if kind not in ours]
    last = len(CONDITION_ORDER)
    merged.sort(
        key=lambda c: CONDITION_ORDER.index(c["type"]) if c["type"] in CONDITION_ORDER else last
    )
    return merged


def build_status(
    pod: dict[str, Any],
    runs: dict[str, Run],
    *,
    phase: str,
    start_time: str,
    reason: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The pod's whole new status: its current one with this node's fields replaced."""
    spec = pod["spec"]
    init_specs = spec.get("initContainers") or []
    pending_init = [
        c["name"]
        for c in init_specs
        if not is_sidecar(c) and not (runs.get(c["name"]) and runs[c["name"]].succeeded)
    ]
    started_main = any(
        (run := runs.get(c["name"])) is not None and (run.state or run.last_state)
        for c in spec["containers"]
    )
    initializing = bool(pending_init) and not started_main
    init_statuses = [
        container_status(c, runs.get(c["name"]), init=True, initializing=initializing)
        for c in init_specs
    ]
    statuses = [
        container_status(c, runs.get(c["name"]), init=False, initializing=initializing)
        for c in spec["containers"]
    ]
    unready = [s["name"] for s in statuses if not s["ready"]]
    generation = pod["metadata"].get("generation")
    status = dict(pod.get("status") or {})
    status.update(
        {
            "phase": phase,
            "conditions": _merge_conditions(
                status.get("conditions") or [],
                _conditions(phase, pending_init, initializing, unready),
                generation,
            ),
            "hostIP": HOST_IP,
            "hostIPs": [{"ip": HOST_IP}],
            "podIP": HOST_IP,
            "podIPs": [{"ip": HOST_IP}],
            "startTime": start_time,
            "containerStatuses": statuses,
        }
    )
    if init_specs:
        status["initContainerStatuses"] = init_statuses
    if generation is not None:
        status["observedGeneration"] = generation
    for field, value in (("reason", reason), ("message", message)):
        if value:
            status[field] = value
        else:
            status.pop(field, None)
    return status
