"""Pod workers of the process kubelet: one thread per pod bound to the node.

A worker starts the pod's containers as local processes (each through
``launch.py``, in its own session and, as root, its own mount namespace),
restarts them as the restart policy says, enforces the pod's
``activeDeadlineSeconds``, kills them when the pod is deleted, reports the
status the kubelet would, and finally deletes a terminal pod with grace period
0. It never touches finalizers: the Job controller's tracking finalizer is the
Job controller's to remove.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import envs
from .podstatus import TERMINAL, Run, build_status, now, pod_phase
from .processes import ProcessRecord
from .rawapi import ApiError

if TYPE_CHECKING:
    from .kubelet import ProcessKubelet

log = logging.getLogger("kubelet")

LAUNCHER = Path(__file__).with_name("launch.py")
DEFAULT_MESSAGE_PATH = "/dev/termination-log"
MAX_MESSAGE_BYTES = 4096
MAX_POD_MESSAGE_BYTES = 12 * 1024
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
LOST_MESSAGE = "The container could not be located when the pod was terminated"
NO_COMMAND_MESSAGE = (
    "the process kubelet ignores container images, so the image's entrypoint is unknown: "
    "set 'command'"
)
CRASH_BACKOFF_INITIAL = 10.0
CRASH_BACKOFF_MAX = 300.0
START_TIMEOUT = 30.0


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pod_key(pod: dict[str, Any]) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def pod_path(pod: dict[str, Any], suffix: str = "") -> str:
    meta = pod["metadata"]
    return f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}{suffix}"


class PodWorker:
    """Drives one pod bound to this node: start, watch, restart, kill, report, final delete."""

    def __init__(self, kubelet: ProcessKubelet, pod: dict[str, Any]) -> None:
        self.kubelet = kubelet
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.key = pod_key(pod)
        self.dir = kubelet.config.root_dir / "pods" / self.uid
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.gone = False
        self.done = False
        self.runs: dict[str, Run] = {}
        self.seeded = False
        self.start_time: str | None = None
        self.terminal_phase: str | None = None
        self.pod_reason: str | None = None
        self.pod_message: str | None = None
        self.killed_for_deletion = False
        self.final_deleted = False
        self.last_sent: dict[str, Any] | None = None
        self.last_stored: dict[str, Any] | None = None
        self.thread = threading.Thread(target=self._loop, name=f"pod {self.key}", daemon=True)

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "pod.json").write_text(
            json.dumps(
                {
                    "namespace": self.pod["metadata"]["namespace"],
                    "name": self.pod["metadata"]["name"],
                }
            )
        )
        self.thread.start()

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        self.wake.set()

    def forget(self) -> None:
        """The pod object is gone from the API."""
        self.gone = True
        self.wake.set()

    def _loop(self) -> None:
        while not self.done and not self.kubelet.stopping.is_set():
            self.wake.clear()
            try:
                delay = self.sync()
            except Exception:
                log.exception("%s: sync failed; retrying", self.key)
                delay = 2.0
            if self.done:
                break
            self.wake.wait(max(delay, 0.05))
        self.kubelet.worker_done(self)

    # -- the sync loop ---------------------------------------------------------

    def sync(self) -> float:
        pod = self.pod
        if self.gone:
            self.kill_all(grace=2, reason="pod deleted from the API")
            self.done = True
            return 0
        if pod["metadata"].get("deletionTimestamp"):
            return self.sync_deleted(pod)
        api_phase = (pod.get("status") or {}).get("phase")
        if api_phase in TERMINAL:
            if self.terminal_phase is None:
                self.kill_all(grace=0, reason="pod is already terminal")
                self.terminal_phase = api_phase
            return 60
        if self.terminal_phase:
            self.push_status()
            return 10
        self.seed_from_api(pod)
        if self.start_time is None:
            self.start_time = (pod.get("status") or {}).get("startTime") or now()
        deadline = self.deadline()
        if deadline is not None and time.time() >= deadline:
            self.kubelet.event(pod, "Warning", "DeadlineExceeded", DEADLINE_MESSAGE)
            self.kill_all(grace=self.termination_grace(), reason="active deadline exceeded")
            with self.lock:
                self.pod_reason, self.pod_message = "DeadlineExceeded", DEADLINE_MESSAGE
                self.terminal_phase = "Failed"
            self.push_status()
            return 10
        self.run_containers(pod)
        phase = self.phase(pod)
        if phase in TERMINAL:
            self.terminal_phase = phase
        self.push_status()
        return self.next_delay(deadline)

    def sync_deleted(self, pod: dict[str, Any]) -> float:
        api_phase = (pod.get("status") or {}).get("phase")
        if not self.killed_for_deletion:
            self.killed_for_deletion = True
            if api_phase not in TERMINAL:
                grace = pod["metadata"].get("deletionGracePeriodSeconds")
                if grace is None:
                    grace = self.termination_grace()
                self.kill_all(grace=float(grace), reason="pod is being deleted")
        if api_phase not in TERMINAL:
            with self.lock:
                self.seed_from_api(pod)
                for run in self.runs.values():
                    if run.terminated is None:
                        run.state = {
                            "terminated": run.last_state.get("terminated") or self.lost_state(run)
                        }
                if self.terminal_phase is None:
                    main = [self.runs.get(c["name"]) for c in pod["spec"]["containers"]]
                    ok = all(run is not None and run.succeeded for run in main)
                    self.terminal_phase = "Succeeded" if ok else "Failed"
            if not self.push_status():
                return 1.0
        if not self.final_deleted:
            self.final_delete(pod)
        return 10

    def final_delete(self, pod: dict[str, Any]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": self.uid},
        }
        try:
            self.kubelet.api.request("DELETE", pod_path(pod), body=body)
        except ApiError as error:
            if error.status not in (404, 409):
                raise
        self.final_deleted = True
        log.info("%s: terminal; deleted with grace period 0", self.key)

    # -- containers ------------------------------------------------------------

    def seed_from_api(self, pod: dict[str, Any]) -> None:
        """Adopt the API's view of containers this process never ran (after a kubelet restart)."""
        if self.seeded:
            return
        self.seeded = True
        status = pod.get("status") or {}
        specs = {c["name"]: (c, True) for c in pod["spec"].get("initContainers") or []}
        specs.update({c["name"]: (c, False) for c in pod["spec"]["containers"]})
        for item in (status.get("initContainerStatuses") or []) + (
            status.get("containerStatuses") or []
        ):
            if item["name"] not in specs or item["name"] in self.runs:
                continue
            spec, init = specs[item["name"]]
            run = Run(
                name=item["name"],
                image=spec.get("image", ""),
                init=init,
                restart_count=int(item.get("restartCount") or 0),
                last_state=item.get("lastState") or {},
                container_id=item.get("containerID", ""),
            )
            state = item.get("state") or {}
            if "terminated" in state:
                run.state = state
            elif "running" in state:
                run.state = {
                    "terminated": self.lost_state(run, started_at=state["running"].get("startedAt"))
                }
            else:
                continue
            self.runs[run.name] = run

    def lost_state(self, run: Run, started_at: str | None = None) -> dict[str, Any]:
        state = {
            "exitCode": 137,
            "reason": "ContainerStatusUnknown",
            "message": LOST_MESSAGE,
            "finishedAt": now(),
        }
        if started_at:
            state["startedAt"] = started_at
        return state

    def run_containers(self, pod: dict[str, Any]) -> None:
        policy = pod["spec"].get("restartPolicy", "Always")
        for container in pod["spec"].get("initContainers") or []:
            sidecar = container.get("restartPolicy") == "Always"
            run = self.runs.get(container["name"])
            if sidecar:
                if run is None or not run.running:
                    self.ensure_started(pod, container, init=True, restart=True)
                    if not (self.runs[container["name"]].running):
                        return
                continue
            if run is not None and run.succeeded:
                continue
            if run is not None and run.running:
                return
            if run is not None and run.terminated is not None and policy == "Never":
                return  # the pod fails: phase() sees the failed init container
            self.ensure_started(pod, container, init=True, restart=policy != "Never")
            return
        for container in pod["spec"]["containers"]:
            run = self.runs.get(container["name"])
            if run is None or (not run.terminated and not run.running):
                self.ensure_started(pod, container, init=False, restart=False)
                continue
            term = run.terminated
            if term is not None and (
                policy == "Always" or (policy == "OnFailure" and term.get("exitCode") != 0)
            ):
                self.ensure_started(pod, container, init=False, restart=True)

    def ensure_started(
        self, pod: dict[str, Any], container: dict[str, Any], *, init: bool, restart: bool
    ) -> None:
        name = container["name"]
        with self.lock:
            run = self.runs.get(name)
            if run is None:
                run = Run(name=name, image=container.get("image", ""), init=init)
                self.runs[name] = run
            if run.running:
                return
            if run.terminated is not None:
                if not restart:
                    return
                if not run.restart_pending:
                    # First restart at once, then 10 s doubling up to 5 min (CrashLoopBackOff).
                    delay = (
                        0.0
                        if run.restart_count == 0
                        else min(
                            CRASH_BACKOFF_INITIAL * 2 ** (run.restart_count - 1), CRASH_BACKOFF_MAX
                        )
                    )
                    run.restart_pending = True
                    run.retry_at = time.monotonic() + delay
                    if delay:
                        meta = pod["metadata"]
                        run.last_state = {"terminated": run.terminated}
                        run.state = {
                            "waiting": {
                                "reason": "CrashLoopBackOff",
                                "message": f"back-off {int(delay)}s restarting failed "
                                f"container={name} "
                                f"pod={meta['name']}_{meta['namespace']}({self.uid})",
                            }
                        }
                        self.kubelet.event(
                            pod,
                            "Warning",
                            "BackOff",
                            "Back-off restarting failed container "
                            f"{name} in pod {meta['name']}_{meta['namespace']}({self.uid})",
                        )
            if time.monotonic() < run.retry_at:
                return
            if run.restart_pending:
                run.last_state = (
                    {"terminated": run.terminated} if run.terminated else run.last_state
                )
                run.restart_count += 1
                run.restart_pending = False
        self.launch(pod, container, run)

    def launch(self, pod: dict[str, Any], container: dict[str, Any], run: Run) -> None:
        name = container["name"]
        if not container.get("command"):
            self.wait_with(run, "CreateContainerError", NO_COMMAND_MESSAGE, pod)
            return
        try:
            env = self.kubelet.environment(pod, container)
        except envs.ConfigError as error:
            self.wait_with(run, "CreateContainerConfigError", str(error), pod)
            return
        argv = [
            envs.expand(part, env.get)
            for part in container["command"] + (container.get("args") or [])
        ]
        cdir = self.dir / "containers" / name
        cdir.mkdir(parents=True, exist_ok=True)
        attempt = run.restart_count
        log_path = cdir / f"{attempt}.log"
        message_file = cdir / f"termination-message-{attempt}"
        message_file.write_bytes(b"")
        message_target = container.get("terminationMessagePath") or DEFAULT_MESSAGE_PATH
        workdir = container.get("workingDir") or str(self.dir / "workdir")
        os.makedirs(self.dir / "workdir", exist_ok=True)
        mounts: list[list[str | None]] = []
        if self.kubelet.private_mounts:
            mounts.append([str(message_file), message_target])
            if not os.path.isdir(workdir):
                mounts.append([None, workdir])
        else:
            env["TERMINATION_MESSAGE_PATH"] = str(message_file)
        read_fd, write_fd = os.pipe()
        spec = {
            "argv": argv,
            "cwd": workdir,
            "mounts": mounts,
            "scratch": str(cdir / f"mnt-{attempt}"),
            "status_fd": write_fd,
        }
        with open(log_path, "ab") as log_file:
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(spec)],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=log_file,
                    start_new_session=True,
                    pass_fds=(write_fd,),
                    cwd=str(cdir),
                )
            finally:
                os.close(write_fd)
        started_at = now()
        failure = read_start_status(read_fd)
        with self.lock:
            run.log_path = log_path
            run.container_id = f"proc://{proc.pid}"
            run.exited = threading.Event()
            if failure is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)  # only if it hung before its exec
                proc.wait()
                run.state = {
                    "terminated": {
                        "exitCode": 128,
                        "reason": "StartError",
                        "message": failure,
                        "startedAt": "1970-01-01T00:00:00Z",
                        "finishedAt": now(),
                        "containerID": run.container_id,
                    }
                }
                run.exited.set()
                self.kubelet.event(pod, "Warning", "Failed", f"Error: {failure}")
                log.info("%s: container %s failed to start: %s", self.key, name, failure)
                return
            run.proc = proc
            run.state = {"running": {"startedAt": started_at}}
        record = ProcessRecord.of(f"{self.key}/{name}", proc.pid)
        (cdir / "process.json").write_text(json.dumps(record.to_json()))
        log.info("%s: started container %s as pid %d: %s", self.key, name, proc.pid, argv)
        self.kubelet.event(pod, "Normal", "Started", f"Started container {name}")
        threading.Thread(
            target=self._watch_exit,
            args=(pod, container, run, proc, message_file, cdir),
            name=f"exit {self.key}/{name}",
            daemon=True,
        ).start()

    def wait_with(self, run: Run, reason: str, message: str, pod: dict[str, Any]) -> None:
        with self.lock:
            first = run.state.get("waiting", {}).get("reason") != reason
            run.state = {"waiting": {"reason": reason, "message": message}}
            run.retry_delay = min(max(run.retry_delay * 2, 1.0), 10.0)
            run.retry_at = time.monotonic() + run.retry_delay
        if first:
            log.info("%s: container %s waiting: %s: %s", self.key, run.name, reason, message)
            self.kubelet.event(pod, "Warning", "Failed", f"Error: {message}")

    def _watch_exit(
        self,
        pod: dict[str, Any],
        container: dict[str, Any],
        run: Run,
        proc: subprocess.Popen[bytes],
        message_file: Path,
        cdir: Path,
    ) -> None:
        code = proc.wait()
        finished_at = now()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # what the main process left behind dies with it
        exit_code = code if code >= 0 else 128 - code
        message = self.termination_message(container, message_file, run.log_path, exit_code)
        state: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": run.state.get("running", {}).get("startedAt", finished_at),
            "finishedAt": finished_at,
            "containerID": run.container_id,
        }
        if message:
            state["message"] = message
        with self.lock:
            run.proc = None
            run.state = {"terminated": state}
            run.retry_delay = 0.0
        with contextlib.suppress(FileNotFoundError):
            (cdir / "process.json").unlink()
        log.info("%s: container %s exited with code %d", self.key, run.name, exit_code)
        run.exited.set()
        self.wake.set()

    def termination_message(
        self, container: dict[str, Any], message_file: Path, log_path: Path | None, exit_code: int
    ) -> str:
        budget = min(MAX_MESSAGE_BYTES, MAX_POD_MESSAGE_BYTES // max(1, self.container_count()))
        try:
            with open(message_file, "rb") as handle:
                data = handle.read(budget)
        except OSError:
            data = b""
        if (
            not data
            and exit_code != 0
            and log_path is not None
            and container.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        ):
            data = tail(log_path, lines=FALLBACK_LOG_LINES, limit=min(FALLBACK_LOG_BYTES, budget))
        return data.decode(errors="replace")

    def container_count(self) -> int:
        spec = self.pod["spec"]
        return len(spec["containers"]) + len(spec.get("initContainers") or [])

    def kill_all(self, *, grace: float, reason: str) -> None:
        with self.lock:
            victims = [run for run in self.runs.values() if run.proc is not None]
        if not victims:
            return
        log.info(
            "%s: killing %d container(s) (%s), grace %.0f s", self.key, len(victims), reason, grace
        )
        for run in victims:
            self.kubelet.event(self.pod, "Normal", "Killing", f"Stopping container {run.name}")
            signal_group(run, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        deadline = time.monotonic() + grace
        for run in victims:
            run.exited.wait(max(0.0, deadline - time.monotonic()))
        for run in victims:
            if not run.exited.is_set():
                signal_group(run, signal.SIGKILL)
                run.exited.wait(10)

    # -- status ----------------------------------------------------------------

    def deadline(self) -> float | None:
        seconds = self.pod["spec"].get("activeDeadlineSeconds")
        if seconds is None or self.start_time is None:
            return None
        return parse_time(self.start_time) + int(seconds)

    def termination_grace(self) -> float:
        value = self.pod["spec"].get("terminationGracePeriodSeconds")
        return float(30 if value is None else value)

    def next_delay(self, deadline: float | None) -> float:
        delays = [10.0]
        if deadline is not None:
            delays.append(deadline - time.time() + 0.05)
        with self.lock:
            for run in self.runs.values():
                if not run.running and run.retry_at:
                    delays.append(run.retry_at - time.monotonic() + 0.01)
        return max(0.05, min(delays))

    def phase(self, pod: dict[str, Any]) -> str:
        if self.terminal_phase:
            return self.terminal_phase
        with self.lock:
            return pod_phase(pod["spec"], self.runs)

    def build_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        phase = self.phase(pod)
        with self.lock:
            return build_status(
                pod,
                self.runs,
                phase=phase,
                start_time=self.start_time or now(),
                reason=self.pod_reason,
                message=self.pod_message,
            )

    def push_status(self) -> bool:
        """Write the status if it changed; True once the API holds it."""
        pod = self.pod
        for _ in range(5):
            status = self.build_status(pod)
            # Unchanged since the last write, and nobody else wrote since: nothing to do. (The
            # server may normalise what it stores, so compare sent with sent, stored with stored.)
            if status == self.last_sent and pod.get("status") == self.last_stored:
                return True
            body = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": pod["metadata"],
                "spec": pod["spec"],
                "status": status,
            }
            try:
                updated = self.kubelet.api.request("PUT", pod_path(pod, "/status"), body=body)
            except ApiError as error:
                if error.status == 409:
                    pod = self.kubelet.api.get(pod_path(pod))
                    continue
                if error.status == 404:
                    return False
                raise
            self.last_sent = status
            self.last_stored = updated.get("status")
            if updated.get("metadata", {}).get("uid") == self.uid:
                self.pod = updated
            return True
        return False


def signal_group(run: Run, sig: int) -> None:
    proc = run.proc
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def tail(path: Path, *, lines: int, limit: int) -> bytes:
    """The last ``lines`` lines of a log, at most ``limit`` bytes."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            handle.seek(max(0, size - max(limit * 4, 65536)))
            data = handle.read()
    except OSError:
        return b""
    return b"".join(data.splitlines(keepends=True)[-lines:])[-limit:]


def read_start_status(read_fd: int) -> str | None:
    """Empty EOF: the launcher exec'd the command. Text: why it could not (bounded wait)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return f"the container did not start within {START_TIMEOUT:.0f} s"
            chunk = os.read(read_fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
    return b"".join(chunks).decode(errors="replace") or None


def probe_private_mounts(root: Path) -> bool:
    """Can the launcher give a container its own mount namespace here?"""
    if os.geteuid() != 0 or shutil.which("true") is None:
        return False
    root.mkdir(parents=True, exist_ok=True)
    probe = root / "mount-probe"
    probe.write_text("")
    read_fd, write_fd = os.pipe()
    spec = {
        "argv": ["true"],
        "cwd": "/",
        "mounts": [[str(probe), DEFAULT_MESSAGE_PATH]],
        "scratch": str(root / "mount-probe-scratch"),
        "status_fd": write_fd,
    }
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(spec)],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        os.close(write_fd)
    failure = read_start_status(read_fd)
    try:
        proc.wait(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False
    if failure:
        log.warning(
            "private mount namespaces unavailable (%s); containers find their termination-message "
            "file in $TERMINATION_MESSAGE_PATH instead",
            failure,
        )
    return failure is None and proc.returncode == 0
