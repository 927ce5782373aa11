"""Tokens come from Secrets and never show up in clear."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from kubernetes import client

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def test_buckets_with_auth_and_the_pod_token_from_a_secret(
    operator_process, works, secured_buckets_process, kube, namespace
):
    token = secured_buckets_process.token
    client.CoreV1Api(kube).create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="work-token"),
                        data={"token": base64.b64encode(token.encode()).decode()}),
    )  # fmt: skip
    process = operator_process(secured_buckets_process.url, **secured_buckets_process.operator_env)
    works.apply(
        "secured",
        {"pipeline": "secure", "site": "local", "user": "tester", "timeout": 60, "retries": 0,
         "command": ["python3", "-c", "import os; print('token' "
                     "if os.environ.get('WORKFLOW_HTTP_TOKEN') else 'none')"],
         "tokenSecretRef": {"name": "work-token", "key": "token"}},
    )  # fmt: skip
    work = works.wait_phase("secured", "success", "failure")
    assert work["status"]["phase"] == "success", work["status"]
    # The runner keeps the token: the Work's own command does not see it.
    assert work["status"]["results"]["stdout"].strip() == "none"
    assert (
        httpx.get(
            f"{secured_buckets_process.url}/work/{work['status']['bucketsId']}", timeout=10
        ).status_code
        == 401
    )
    stored = httpx.get(
        f"{secured_buckets_process.url}/work/{work['status']['bucketsId']}",
        headers=secured_buckets_process.headers,
        timeout=10,
    ).json()
    assert stored["status"] == "success"

    # The token appears nowhere in clear: Work, Jobs, Pods, Events, operator log.
    core = client.CoreV1Api(kube)
    seen = [
        json.dumps(work),
        json.dumps([kube.sanitize_for_serialization(j) for j in works.jobs("secured")]),
        json.dumps(kube.sanitize_for_serialization(core.list_namespaced_pod(namespace))),
        json.dumps(kube.sanitize_for_serialization(core.list_namespaced_event(namespace))),
        process.log(),
    ]
    for text in seen:
        assert token not in text
