"""Each attempt's token: minted for its record, kept in a Secret, named by the Job, never shown."""

import base64
import json

import jwt
import pytest

from workflow.controller.jobs import build_job
from workflow.controller.resource import WorkSpec
from workflow.controller.settings import OperatorSettings
from workflow.controller.tokens import lifetime, minting, secret_name, token_secret
from workflow.worktokens import verify

KEY = "signing-key-for-tests-0123456789abcdef"


def spec(**extra):
    return WorkSpec.model_validate(
        {"pipeline": "demo", "site": "local", "user": "ada", "command": ["true"], **extra}
    )


def settings(**extra):
    return OperatorSettings(token_signing_key=KEY, pending_timeout_seconds=100, **extra)


def test_the_secret_holds_a_token_for_the_record_and_attempt_only():
    secret = token_secret(
        name="mean", namespace="team-a", uid="uid-1", spec=spec(timeout=60),
        record="uid-1", attempt=2, settings=settings(token_margin_seconds=40),
    )  # fmt: skip
    assert secret["metadata"]["name"] == "mean-a2-token" == secret_name("mean", 2)
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    token = base64.b64decode(secret["data"]["token"]).decode()
    grant = verify(KEY, token)
    assert (grant.record, grant.attempt, grant.work) == ("uid-1", 2, "team-a/mean")
    assert lifetime(spec(timeout=60), settings(token_margin_seconds=40)) == 200
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 200


def test_the_job_names_the_attempts_secret_and_holds_no_token():
    work_spec = spec()
    secret = token_secret(
        name="mean", namespace="team-a", uid="uid-1", spec=work_spec, record="uid-1",
        attempt=1, settings=settings(),
    )  # fmt: skip
    job = build_job(
        name="mean", namespace="team-a", uid="uid-1", spec=work_spec,
        document={"id": "uid-1", "attempt": 1}, attempt=1, run_id=None, settings=settings(),
        token_secret=secret["metadata"]["name"],
    )  # fmt: skip
    [container] = job["spec"]["template"]["spec"]["containers"]
    env = {var["name"]: var for var in container["env"]}
    assert env["WORKFLOW_HTTP_TOKEN"] == {
        "name": "WORKFLOW_HTTP_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "mean-a1-token", "key": "token"}},
    }
    text = json.dumps(job)
    assert secret["data"]["token"] not in text
    assert base64.b64decode(secret["data"]["token"]).decode() not in text
    assert KEY not in text


def test_tokens_are_minted_only_with_a_key_and_without_a_works_own_token():
    assert minting(spec(), settings())
    assert not minting(spec(tokenSecretRef={"name": "mine", "key": "t"}), settings())
    assert not minting(spec(), OperatorSettings())


def test_a_short_signing_key_is_refused_naming_the_setting():
    with pytest.raises(ValueError, match="token_signing_key: must be at least 32 bytes"):
        OperatorSettings(token_signing_key="short")
