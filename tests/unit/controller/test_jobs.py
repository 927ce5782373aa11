"""The Job of an attempt: deterministic name, one try bounded by the timeout, no token inside."""

import json

from workflow.controller import resource
from workflow.controller.jobs import build_job, job_name
from workflow.controller.resource import WorkSpec
from workflow.controller.settings import OperatorSettings


def spec(**extra):
    return WorkSpec.model_validate(
        {"pipeline": "demo", "site": "local", "user": "ada", "command": ["echo", "hi"], **extra}
    )


def build(work_spec=None, attempt=1, settings=None):
    return build_job(
        name="sample",
        namespace="science",
        uid="uid-1",
        spec=work_spec or spec(),
        document={"id": "uid-1", "attempt": attempt},
        attempt=attempt,
        run_id=None,
        settings=settings or OperatorSettings(),
    )


def test_job_names_are_deterministic_and_short():
    assert job_name("sample", 2) == "sample-a2"
    assert job_name("sample", 2) == job_name("sample", 2)
    assert job_name("sample", 1, "again") != job_name("sample", 1)
    long = job_name("x" * 80, 3)
    assert len(long) <= 63 and long.endswith("-a3")
    assert job_name("x" * 80, 3) != job_name("x" * 79 + "y", 3)


def test_job_makes_one_try_bounded_by_the_timeout_and_belongs_to_the_work():
    job = build(spec(timeout=120), attempt=2)
    assert job["metadata"]["name"] == "sample-a2"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 120
    owner = job["metadata"]["ownerReferences"][0]
    assert owner["uid"] == "uid-1" and owner["controller"] is True and owner["kind"] == "Work"
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert pod_labels[resource.WORK_UID_LABEL] == "uid-1"
    assert pod_labels[resource.ATTEMPT_LABEL] == "2"


def test_pods_run_non_root_with_a_read_only_root():
    pod = build()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    security = pod["containers"][0]["securityContext"]
    assert security == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def test_token_reaches_the_pod_only_by_secret_reference():
    container = build(spec(tokenSecretRef={"name": "mine", "key": "t"}))["spec"]["template"][
        "spec"
    ]["containers"][0]
    token = next(var for var in container["env"] if var["name"] == "WORKFLOW_HTTP_TOKEN")
    assert token == {
        "name": "WORKFLOW_HTTP_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "mine", "key": "t"}},
    }
    default = next(
        var
        for var in build()["spec"]["template"]["spec"]["containers"][0]["env"]
        if var["name"] == "WORKFLOW_HTTP_TOKEN"
    )
    assert default["valueFrom"]["secretKeyRef"]["optional"] is True


def test_the_settings_token_never_lands_in_the_manifest():
    settings = OperatorSettings(buckets_token="s3cr3t-token-value")
    assert "s3cr3t-token-value" not in json.dumps(build(settings=settings))


def test_work_document_and_user_choices_reach_the_container():
    job = build(
        spec(
            image="python:3.11",
            env=[{"name": "A", "value": "1"}],
            nodeSelector={"disk": "ssd"},
            resources={"limits": {"cpu": "1"}},
            serviceAccountName="runner",
        )
    )
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {var["name"]: var for var in container["env"]}
    assert json.loads(env["WORKFLOW_WORK"]["value"]) == {"id": "uid-1", "attempt": 1}
    assert env["A"]["value"] == "1"
    assert container["image"] == "python:3.11"
    assert container["resources"] == {"limits": {"cpu": "1"}}
    assert container["command"][-2:] == ["--work-env", "WORKFLOW_WORK"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert pod["nodeSelector"] == {"disk": "ssd"}
    assert pod["serviceAccountName"] == "runner"


TRICKY = ["$$", "$(HOME)", "$(WORKFLOW_WORK)", "a$", "$$(HOME)", "$$$", "cost: $5 $(", "plain"]


def test_env_values_survive_the_kubelets_expansion_byte_exact():
    from localcluster.envs import expand  # the kubelet's $(VAR) rules, as the double applies them

    defined = {"HOME": "/home/ada", "WORKFLOW_WORK": "{}"}
    work_spec = spec(parameters={"text": TRICKY}, env=[{"name": "EXTRA", "value": "".join(TRICKY)}])
    document = {"id": "uid-1", "parameters": {"text": TRICKY}}
    job = build_job(
        name="sample", namespace="science", uid="uid-1", spec=work_spec, document=document,
        attempt=1, run_id=None, settings=OperatorSettings(),
    )  # fmt: skip
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    delivered = expand(env["WORKFLOW_WORK"]["value"], defined.get)
    assert json.loads(delivered) == document
    assert expand(env["EXTRA"]["value"], defined.get) == "".join(TRICKY)


def test_host_network_only_when_the_settings_ask_for_it():
    assert "hostNetwork" not in build()["spec"]["template"]["spec"]
    job = build(settings=OperatorSettings(host_network=True))
    assert job["spec"]["template"]["spec"]["hostNetwork"] is True
