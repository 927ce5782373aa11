"""Shared by the operator benchmarks: the CRD, an operator process, Work bodies, idleness.

The operator runs as the integration tests run it (``python -m workflow
operator run -n NS`` with ``KUBECONFIG`` and ``WORKFLOW_OPERATOR_*``), with
its liveness endpoint on a free port so the benchmark knows when it serves.
Its runner command is ``true``: a Job's pod then exits 0 at once, which is
what a bare Job of ``true`` does too, so both sides of a comparison run the
same process per pod and differ only in who created the Job.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bench.harness import ROOT, clean_environment, free_port, start, stop, usage, wait_until
from bench.kube import Api

CRD = ROOT / "crds" / "work.yaml"
WORKS_PATH = "/apis/workflow.dev/v1alpha1/namespaces/{namespace}/works"


async def apply_crd(api: Api) -> None:
    """Create the Work CRD and wait until it is Established (and served)."""
    manifest = yaml.safe_load(CRD.read_text())
    name = manifest["metadata"]["name"]
    try:
        await api.request(
            "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", manifest
        )
    except RuntimeError as error:
        if " 409 " not in str(error):
            raise
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        crd = await api.request(
            "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        )
        conditions = (crd.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            await asyncio.sleep(1)
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("the Work CRD was not Established within 60 s")


def work_body(name: str) -> dict[str, Any]:
    """A Work whose single attempt runs ``true``."""
    return {
        "apiVersion": "workflow.dev/v1alpha1",
        "kind": "Work",
        "metadata": {"name": name},
        "spec": {
            "pipeline": "bench",
            "site": "local",
            "user": "bench",
            "command": ["true"],
            "timeout": 600,
            "retries": 0,
        },
    }


def job_body(name: str) -> dict[str, Any]:
    """A bare Job whose single pod runs ``true`` (the Job controller's own work)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "containers": [{"name": "work", "image": "bench", "command": ["true"]}],
                }
            },
        },
    }


class Operator:
    """One operator process for one namespace."""

    def __init__(self, info: Any, namespace: str, buckets_url: str, log: Path, **env: str) -> None:
        self.port = free_port()
        defaults = {
            "KUBECONFIG": str(info.kubeconfig),
            "WORKFLOW_OPERATOR_BUCKETS_URL": buckets_url,
            "WORKFLOW_OPERATOR_RUNNER_COMMAND": json.dumps(["true"]),
            "PYTHONUNBUFFERED": "1",
        }
        self.env = clean_environment(**{**defaults, **env})
        self.namespace, self.log = namespace, log
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> Operator:
        argv = [
            sys.executable,
            "-m",
            "workflow",
            "operator",
            "run",
            "-n",
            self.namespace,
            "--liveness",
            f"http://127.0.0.1:{self.port}/healthz",
        ]
        self.started = time.monotonic()
        self.process = start(argv, env=self.env, log=self.log)
        return self

    def wait_serving(self, timeout: float = 60) -> float:
        """Seconds from start until the liveness endpoint answers."""
        import httpx

        assert self.process is not None
        wait_until(
            lambda: (
                self.process is not None
                and self.process.poll() is None
                and httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200
            ),
            timeout=timeout,
            interval=0.2,
            what="the operator's liveness endpoint",
        )
        return time.monotonic() - self.started

    def usage(self) -> Any:
        assert self.process is not None
        return usage(self.process.pid)

    def stop(self, grace: float = 60) -> None:
        if self.process is not None:
            stop(self.process, grace=grace)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


async def wait_idle(
    operator: Operator, *, timeout: float, quiet: float = 3.0, threshold: float = 0.05
) -> float | None:
    """Seconds since the operator started until it became idle (None if it never did).

    Idle: it used under ``threshold`` of a core over ``quiet`` seconds in a
    row; the answer is the start of that quiet window.
    """
    samples: list[tuple[float, float]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples.append((time.monotonic(), operator.usage().cpu))
        # the latest sample at least ``quiet`` seconds before the last one opens the window
        opening = [sample for sample in samples if sample[0] <= samples[-1][0] - quiet]
        if opening:
            since, cpu = opening[-1]
            if (samples[-1][1] - cpu) / (samples[-1][0] - since) < threshold:
                return since - operator.started
        await asyncio.sleep(0.5)
    return None
