"""Benchmark 7: Works → success on the real node, against bare Jobs in the same cluster.

The cluster's node is a real kubelet with containerd and runc
(``hack/cluster up --node containerd``); every pod is a real container from
the project's image. For each N, in fresh namespaces:

1. **bare Jobs** - N Jobs whose one pod runs ``true`` in the project's image
   (non-root, read-only root, the node's network, as Work pods run). Recorded:
   when the last Job completed.
2. **Works** - N Works of ``true`` through the operator, whose pods run the
   real runner (``workflow run``) in the same image: it reads the Work,
   records its start and outcome in buckets, runs ``true``. Recorded: when
   the last Work reached ``success``.

The ratio says what running a Work costs over running a bare Job on a real
node: the operator's round trips and the runner's Python start-up and
buckets writes inside each container.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench import kube, services
from bench.harness import Figure, Options, Report, phase
from bench.operating import apply_crd, job_body
from bench.operator_throughput import _bare_jobs, _works

NAME = "realnode_throughput"
TITLE = "real node throughput"
IMAGE = "localhost/workflow:dev"
UID = 10001


def container_job_body(name: str) -> dict[str, Any]:
    """A bare Job whose pod runs ``true`` in the project's image, set up as a Work pod is."""
    body = job_body(name)
    pod = body["spec"]["template"]["spec"]
    pod.update(
        enableServiceLinks=False,
        hostNetwork=True,
        securityContext={"runAsNonRoot": True, "runAsUser": UID,
                         "seccompProfile": {"type": "RuntimeDefault"}},
    )  # fmt: skip
    pod["containers"][0].update(
        image=IMAGE,
        imagePullPolicy="Never",
        securityContext={"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                         "capabilities": {"drop": ["ALL"]}},
    )  # fmt: skip
    return body


OPERATOR_ENV = {
    "WORKFLOW_OPERATOR_IMAGE": IMAGE,
    "WORKFLOW_OPERATOR_IMAGE_PULL_POLICY": "Never",
    "WORKFLOW_OPERATOR_HOST_NETWORK": "true",
    "WORKFLOW_OPERATOR_RUN_AS_USER": str(UID),
    "WORKFLOW_OPERATOR_RUNNER_COMMAND": '["workflow", "run"]',
}


def run(options: Options) -> Report:
    report = Report(NAME, TITLE, options.command(NAME), options.quick)
    sizes = options.pick((50,), (3,))
    report.details["sizes"] = list(sizes)
    database = str(options.workdir / "buckets.sqlite3")
    with (
        kube.cluster(options.workdir / "cluster", node="containerd") as info,
        services.buckets("sqlite", database, options.workdir) as server,
    ):
        asyncio.run(_all(report, info, server, sizes, options))
    return report


async def _all(
    report: Report, info: Any, server: services.Buckets, sizes: Any, options: Options
) -> None:
    api = kube.Api(info)
    try:
        await apply_crd(api)
        for size in sizes:
            with phase(f"{size} bare Jobs in containers"):
                bare = await _bare_jobs(api, size, container_job_body)
            with phase(f"{size} Works through the operator in containers"):
                works = await _works(api, info, server, size, options, **OPERATOR_ENV)
            report.details[f"N={size}"] = {"bare_jobs": bare, "works": works}
            report.add(
                Figure(
                    name=f"N={size}: Works → success (real node)",
                    value=size / works["works_success"],
                    unit="/s",
                    ceiling=size / bare["jobs_complete"],
                    ceiling_name="bare Jobs → Complete (real node)",
                    note=f"all Works success after {works['works_success']:.1f} s; "
                    f"all bare Jobs Complete after {bare['jobs_complete']:.1f} s",
                )
            )
    finally:
        await api.close()
