"""A known token, used everywhere a token is used, appears in clear nowhere.

The operator talks to a buckets server that requires the token; the Works'
pods get it from Secrets (the default ``workflow-buckets-token`` and a
``tokenSecretRef``); Works succeed, fail and time out; someone also knocks
with a wrong token. Afterwards every place a person or another program could
read is searched for both tokens: the Work resources and their Events, Jobs
and Pods (``kubectl get -o yaml`` and ``kubectl describe``), the operator's
log and command line, the buckets server's log and database file, every
buckets record, the logs of etcd, the apiserver, the controller manager and
the kubelet, and every container's log and termination message.
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from kubernetes import client

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

SPEC = {"pipeline": "tokens", "site": "local", "user": "tester", "retries": 0, "timeout": 60}
WRONG = "wrong-0f5e1d2c3b4a59687766554433221100"


def secret(kube, namespace: str, name: str, token: str) -> None:
    client.CoreV1Api(kube).create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=name),
                        data={"token": base64.b64encode(token.encode()).decode()}),
    )  # fmt: skip


def test_no_token_appears_in_clear_after_a_run(
    cluster, operator_process, works, secured_buckets_process, kube, namespace, figures
):
    token = secured_buckets_process.token
    server = secured_buckets_process
    secret(kube, namespace, "workflow-buckets-token", token)
    secret(kube, namespace, "own-token", token)
    operator = operator_process(server.url, **server.operator_env)
    # The runner presents the token; the Work's own command must not see it.
    check_token = "import os, sys; sys.exit(9 if os.environ.get('WORKFLOW_HTTP_TOKEN') else 0)"
    specs = {
        "default-secret": {"command": ["python3", "-c", check_token]},
        "own-secret": {"command": ["python3", "-c", check_token],
                       "tokenSecretRef": {"name": "own-token", "key": "token"}},
        "function": {"function": "workflow.examples.functions.mean",
                     "parameters": {"values": [1, 2]}},
        "failing": {"command": ["sh", "-c", "echo doomed >&2; exit 4"]},
        "too-slow": {"command": ["sleep", "60"], "timeout": 2},
        "not-found": {"command": ["no-such-command-anywhere"]},
    }  # fmt: skip
    for name, spec in specs.items():
        works.apply(name, {**SPEC, **spec})
    ended = {name: works.wait_phase(name, "success", "failure", timeout=180) for name in specs}
    for name in ("default-secret", "own-secret", "function"):
        assert ended[name]["status"]["phase"] == "success", ended[name]["status"]
    for knock in ({"x-access-token": WRONG}, {"authorization": f"Bearer {WRONG}"}):
        assert httpx.get(f"{server.url}/status", headers=knock).status_code == 403

    core = client.CoreV1Api(kube)
    places: dict[str, str] = {
        "works (kubectl get -o yaml)": cluster.kubectl(
            "get", "works,jobs,pods,events", "-n", namespace, "-o", "yaml"
        ).stdout,
        "kubectl describe": cluster.kubectl("describe", "works,jobs,pods", "-n", namespace).stdout,
        "events": str(kube.sanitize_for_serialization(core.list_namespaced_event(namespace))),
        "operator log": operator.log(),
        "operator command line": Path(f"/proc/{operator.process.pid}/cmdline").read_text(),
        "buckets log": server.log_path.read_text(errors="replace"),
        "buckets database": Path(server.database.removeprefix("sqlite:///"))
        .read_bytes()
        .decode("latin-1"),
    }
    records = httpx.post(f"{server.url}/view", json={"query": {}, "limit": None},
                         headers=server.headers, timeout=30).json()  # fmt: skip
    places["buckets records"] = str(records)
    for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kubelet"):
        places[f"{component} log"] = cluster.log_path(component).read_text(errors="replace")
    for pod in core.list_namespaced_pod(namespace).items:
        folder = cluster.root / "kubelet" / "pods" / pod.metadata.uid / "containers"
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name != "process.json":
                places[f"container file {path.relative_to(cluster.root)}"] = path.read_text(
                    errors="replace"
                )
        for status in pod.status.container_statuses or []:
            terminated = status.state.terminated
            places[f"termination message of {pod.metadata.name}"] = (
                terminated.message or "" if terminated else ""
            )
    assert len(places) > 15, sorted(places)
    figures["bad inputs tried"] += 2
    leaks = [
        f"{which} in {where}"
        for where, text in places.items()
        for which, value in (("the token", token), ("the wrong token", WRONG))
        if value in text
    ]
    print(f"\nsearched {len(places)} places, {sum(map(len, places.values()))} characters")
    assert not leaks, leaks
