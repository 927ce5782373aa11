"""The Job of one attempt of a Work: its name and its manifest (pure builders)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from workflow.controller import resource
from workflow.controller.resource import WorkSpec
from workflow.controller.settings import OperatorSettings

CONTAINER = "work"
#: Where the runner writes its summary; the kubelet turns it into the termination message.
TERMINATION_LOG = "/dev/termination-log"
#: Environment variable that carries the Work document into the container.
WORK_ENV = "WORKFLOW_WORK"


def literal(value: str) -> str:
    """``value`` as an env ``value`` the kubelet hands to the container unchanged.

    The kubelet expands ``$(VAR)`` in env values and turns ``$$`` into ``$``;
    with every ``$`` doubled, that expansion gives back exactly ``value``. This
    keeps the Work document in the Job itself (no ConfigMap or file to create,
    own and clean up, nothing to race with the pod's start) and works the same
    on every kubelet.
    """
    return value.replace("$", "$$")


def _literal_env(var: dict[str, Any]) -> dict[str, Any]:
    if "value" in var and isinstance(var["value"], str):
        return {**var, "value": literal(var["value"])}
    return var


def job_name(work_name: str, attempt: int, run_id: str | None = None) -> str:
    """Deterministic Job name for an attempt: the same inputs always give the same name.

    Names stay within 63 characters (the Job's name becomes a pod label); a
    long Work name is shortened and made unique again with a hash.
    """
    run = f"-r{hashlib.sha256(run_id.encode()).hexdigest()[:6]}" if run_id else ""
    suffix = f"{run}-a{attempt}"
    name = f"{work_name}{suffix}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{work_name[: 63 - len(suffix) - 9]}-{digest}{suffix}"


def work_labels(name: str, uid: str) -> dict[str, str]:
    """Labels that tie a Job or Pod to its Work."""
    return {
        resource.WORK_NAME_LABEL: name[:63].rstrip("-."),
        resource.WORK_UID_LABEL: uid,
        "app.kubernetes.io/managed-by": "workflow-operator",
        "app.kubernetes.io/part-of": "workflow",
    }


def owner_reference(name: str, uid: str) -> dict[str, Any]:
    """Makes the Job belong to the Work: deleting the Work deletes its Jobs."""
    return {
        "apiVersion": resource.API_VERSION,
        "kind": resource.KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _token_env(
    spec: WorkSpec, settings: OperatorSettings, token_secret: str | None
) -> dict[str, Any]:
    if token_secret is not None:  # the attempt's own token (controller/tokens.py)
        ref: dict[str, Any] = {"name": token_secret, "key": "token"}
    elif spec.tokenSecretRef is not None:
        ref = {"name": spec.tokenSecretRef.name, "key": spec.tokenSecretRef.key}
    else:
        ref = {"name": settings.job_token_secret, "key": "token", "optional": True}
    return {"name": "WORKFLOW_HTTP_TOKEN", "valueFrom": {"secretKeyRef": ref}}


def build_job(
    *,
    name: str,
    namespace: str,
    uid: str,
    spec: WorkSpec,
    document: dict[str, Any],
    attempt: int,
    run_id: str | None,
    settings: OperatorSettings,
    token_secret: str | None = None,
) -> dict[str, Any]:
    """The Job that runs ``attempt`` of the Work.

    The Job makes a single try (``backoffLimit: 0``) bounded by the Work's
    timeout: the operator owns retries, so it can record every attempt and
    wait its backoff between them. The token reaches the pod only through a
    ``secretKeyRef`` (to ``token_secret``, the attempt's own, when given);
    the manifest never holds it.
    """
    labels = {**work_labels(name, uid), resource.ATTEMPT_LABEL: str(attempt)}
    env: list[dict[str, Any]] = [
        {"name": WORK_ENV, "value": literal(json.dumps(document, separators=(",", ":")))},
        {"name": "WORKFLOW_HTTP_BASEURL", "value": settings.pods_buckets_url},
        _token_env(spec, settings, token_secret),
        {"name": "WORKFLOW_TERMINATION_LOG", "value": TERMINATION_LOG},
        {"name": "HOME", "value": "/tmp"},  # noqa: S108 - the pod's own emptyDir
    ]
    env += [_literal_env(var.model_dump(exclude_none=True)) for var in spec.env or []]
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image or settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": [*settings.runner_command, "--work-env", WORK_ENV],
        "env": env,
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": settings.read_only_root,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir
    }
    if spec.resources is not None:
        container["resources"] = spec.resources.model_dump(exclude_none=True)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "fsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if settings.host_network:
        pod_spec["hostNetwork"] = True
    if spec.serviceAccountName:
        pod_spec["serviceAccountName"] = spec.serviceAccountName
    if spec.nodeSelector:
        pod_spec["nodeSelector"] = spec.nodeSelector
    if spec.tolerations:
        pod_spec["tolerations"] = spec.tolerations
    annotations = {resource.RUN_ANNOTATION: run_id} if run_id else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(name, attempt, run_id),
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(name, uid)],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.timeout,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
