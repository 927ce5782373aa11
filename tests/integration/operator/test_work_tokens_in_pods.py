"""Each attempt gets its own buckets token: its Work's record only, never seen by the Work's code.

The operator and a real buckets server share a signing key; two Works run on
the local cluster. The first Work's command looks for a token in its
environment and finds none. The token its pod was given (read back from the
attempt's Secret, as someone who got hold of it would use it) reads its own
record and is refused, 403, on the other Work's record: view, update,
delete and withdraw. It appears in clear nowhere but that Secret.
"""

from __future__ import annotations

import base64
import json
import secrets

import httpx
import pytest
from kubernetes import client

from fixtures.buckets import BucketsProcess

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

KEY = secrets.token_urlsafe(48)

LOOK_FOR_TOKEN = (
    "import os; names = ('WORKFLOW_HTTP_TOKEN', 'WORKFLOW_TOKEN', 'GITHUB_TOKEN', 'GITHUB_PAT'); "
    "print(','.join(n for n in names if os.environ.get(n)) or 'no token')"
)


@pytest.fixture
def signed_buckets(tmp_path) -> BucketsProcess:
    server = BucketsProcess(
        database=f"sqlite:///{tmp_path / 'signed.sqlite3'}",
        log_path=tmp_path / "signed.log",
        token=f"op-{secrets.token_hex(16)}",
        signing_key=KEY,
    ).start()
    yield server
    server.stop()


def spec(pipeline: str, command: list[str]) -> dict:
    return {"pipeline": pipeline, "site": "local", "user": "tester", "timeout": 60,
            "retries": 0, "command": command}  # fmt: skip


def test_a_works_token_reaches_only_its_own_record_and_not_its_command(
    operator_process, works, signed_buckets, kube, namespace
) -> None:
    process = operator_process(
        signed_buckets.url,
        **signed_buckets.operator_env,
        WORKFLOW_OPERATOR_TOKEN_SIGNING_KEY=KEY,
    )
    works.apply("team-b-work", spec("team-b", ["python3", "-c", "print('b')"]))
    works.apply("team-a-work", spec("team-a", ["python3", "-c", LOOK_FOR_TOKEN]))
    other = works.wait_phase("team-b-work", "success", "failure")
    own = works.wait_phase("team-a-work", "success", "failure")
    assert own["status"]["phase"] == "success", own["status"]
    assert own["status"]["results"]["stdout"].strip() == "no token"
    own_id, other_id = own["status"]["bucketsId"], other["status"]["bucketsId"]

    # The pod reads its token from the attempt's Secret, by reference only.
    [job] = works.jobs("team-a-work")
    [container] = job.spec.template.spec.containers
    [token_env] = [var for var in container.env if var.name == "WORKFLOW_HTTP_TOKEN"]
    assert token_env.value is None
    assert token_env.value_from.secret_key_ref.name == f"{job.metadata.name}-token"
    core = client.CoreV1Api(kube)
    secret = core.read_namespaced_secret(token_env.value_from.secret_key_ref.name, namespace)
    assert secret.metadata.owner_references[0].uid == own["metadata"]["uid"]
    token = base64.b64decode(secret.data["token"]).decode()

    # The runner recorded the outcome with it.
    [pod] = core.list_namespaced_pod(
        namespace, label_selector=f"job-name={job.metadata.name}"
    ).items
    summary = json.loads(pod.status.container_statuses[0].state.terminated.message)
    assert summary["recorded"] is True, summary

    def call(method: str, path: str, **options) -> httpx.Response:
        return httpx.request(
            method, f"{signed_buckets.url}{path}", headers={"x-access-token": token},
            timeout=30, **options,
        )  # fmt: skip

    assert call("GET", f"/work/{own_id}").json()["status"] == "success"
    before = httpx.get(
        f"{signed_buckets.url}/work/{other_id}", headers=signed_buckets.headers, timeout=30
    ).json()
    refused = {
        "view": call("GET", f"/work/{other_id}"),
        "view by query": call("POST", "/view", json={"query": {"id": other_id}}),
        "list": call("POST", "/view", json={"query": {"pipeline": "team-b"}}),
        "update": call("PUT", "/work", json=[{**before, "results": {"overwritten": True}}]),
        "delete": call("DELETE", f"/work?ids={other_id}"),
        "withdraw": call("POST", "/work/withdraw", json={"pipeline": {"$in": ["team-b"]}}),
    }
    for what, reply in refused.items():
        assert reply.status_code == 403, (what, reply.text)
        assert token not in reply.text
    after = httpx.get(
        f"{signed_buckets.url}/work/{other_id}", headers=signed_buckets.headers, timeout=30
    ).json()
    assert after == before

    # The token is in clear nowhere else: Work, Jobs, Pods, Events, operator and buckets logs.
    seen = [
        json.dumps(own),
        json.dumps([kube.sanitize_for_serialization(j) for j in works.jobs("team-a-work")]),
        json.dumps(kube.sanitize_for_serialization(core.list_namespaced_pod(namespace))),
        json.dumps(kube.sanitize_for_serialization(core.list_namespaced_event(namespace))),
        process.log(),
        signed_buckets.log_path.read_text(errors="replace"),
    ]
    for text in seen:
        assert token not in text
        assert KEY not in text


def test_a_secret_left_under_the_attempts_name_is_replaced_with_a_fresh_token(
    operator_process, works, signed_buckets, kube, namespace
) -> None:
    # What a crash between the Secret and the Job leaves, or a deleted Work of the same name.
    core = client.CoreV1Api(kube)
    stale = base64.b64encode(b"stale-token-of-another-work").decode()
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="again-a1-token"),
                        data={"token": stale}),
    )  # fmt: skip
    operator_process(
        signed_buckets.url, **signed_buckets.operator_env, WORKFLOW_OPERATOR_TOKEN_SIGNING_KEY=KEY
    )
    works.apply("again", spec("team-a", ["python3", "-c", "print('x' * 8000)"]))
    work = works.wait_phase("again", "success", "failure")
    # 8 kB of output fit no termination message: only the runner's own record keeps it.
    assert work["status"]["phase"] == "success", work["status"]
    secret = core.read_namespaced_secret("again-a1-token", namespace)
    assert secret.data["token"] != stale
    assert secret.metadata.owner_references[0].uid == work["metadata"]["uid"]
