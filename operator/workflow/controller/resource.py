"""The Work custom resource: its names, and the models of its spec and status.

``WorkSpec`` reuses ``WorkFields`` (what a person asks for) and adds what
running on Kubernetes needs. The CRD's schema is generated from these models,
so they are the single source of truth for what ``kubectl apply`` accepts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflow.definitions.config import Config
from workflow.definitions.notify import Notify
from workflow.definitions.work import WorkFields

GROUP = "workflow.dev"
VERSION = "v1alpha1"
KIND = "Work"
PLURAL = "works"
SINGULAR = "work"
SHORT_NAMES = ["wk"]
CATEGORIES = ["workflow"]
API_VERSION = f"{GROUP}/{VERSION}"

#: Labels put on every Job and Pod of a Work; the operator finds them by these.
WORK_NAME_LABEL = f"{GROUP}/work"
WORK_UID_LABEL = f"{GROUP}/work-uid"
ATTEMPT_LABEL = f"{GROUP}/attempt"
#: Annotation on a Job: the run (``spec.runId``) it belongs to.
RUN_ANNOTATION = f"{GROUP}/run-id"

Phase = Literal["created", "queued", "running", "success", "failure"]
FINAL_PHASES = ("success", "failure")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SecretKeyRef(_Strict):
    """A key of a Secret in the Work's namespace."""

    name: str = Field(min_length=1, description="Name of the Secret.")
    key: str = Field(default="token", min_length=1, description="Key in the Secret.")


class EnvVar(_Strict):
    """An environment variable for the Work's container, as in a Pod spec."""

    name: str = Field(min_length=1, description="Variable name.")
    value: str | None = Field(default=None, description="Literal value.")
    valueFrom: dict[str, Any] | None = Field(
        default=None, description="Source of the value, as in a Pod's env[].valueFrom."
    )


class Resources(_Strict):
    """CPU and memory for the Work's container, as in a Pod spec."""

    requests: dict[str, str] | None = Field(default=None, description="Minimum resources.")
    limits: dict[str, str] | None = Field(default=None, description="Maximum resources.")


class WorkSpec(WorkFields):
    """What a person asks for, plus how to run it on Kubernetes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    config: Config = Field(default_factory=Config, description="Lifecycle configuration.")
    notify: Notify = Field(default_factory=Notify, description="Notifications.")
    image: str | None = Field(
        default=None, description="Container image; the operator's default when unset."
    )
    resources: Resources | None = Field(default=None, description="CPU and memory.")
    env: list[EnvVar] | None = Field(default=None, description="Extra environment variables.")
    nodeSelector: dict[str, str] | None = Field(default=None, description="Node labels to match.")
    tolerations: list[dict[str, Any]] | None = Field(
        default=None, description="Tolerations, as in a Pod spec."
    )
    serviceAccountName: str | None = Field(
        default=None, description="ServiceAccount the Work's pods run as."
    )
    tokenSecretRef: SecretKeyRef | None = Field(
        default=None, description="Secret holding the buckets token the Work's pods use."
    )
    backoff: int | None = Field(
        default=None,
        ge=0,
        le=3600,
        description="Seconds between attempts; operator default when unset.",
    )
    runId: str | None = Field(
        default=None,
        max_length=63,
        description="Change it to run a finished Work again from its first attempt.",
    )
    ttlSecondsAfterFinished: int | None = Field(
        default=None, ge=0, description="Delete the Work this many seconds after it finishes."
    )


#: The three values of a condition's status (Kubernetes API conventions).
ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(BaseModel):
    """A Kubernetes-style condition."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    lastTransitionTime: str
    observedGeneration: int | None = None


class AttemptRecord(BaseModel):
    """How one attempt ended."""

    attempt: int
    job: str
    exitCode: int | None = None
    reason: str
    message: str = ""
    start: float | None = None
    stop: float | None = None


class WorkStatus(BaseModel):
    """What the operator observed and did."""

    model_config = ConfigDict(extra="ignore")

    phase: Phase = Field(
        default="created", description="created, queued, running, success or failure."
    )
    message: str | None = Field(default=None, description="Human summary of the last transition.")
    reason: str | None = Field(default=None, description="One-word reason of the last transition.")
    bucketsId: str | None = Field(default=None, description="Id of the Work's record in buckets.")
    runId: str | None = Field(default=None, description="The spec.runId this status describes.")
    attempt: int = Field(default=0, ge=0, description="Attempt in progress or last made.")
    job: str | None = Field(default=None, description="Job of the current attempt.")
    creation: float | None = Field(default=None, description="Unix time the Work was deposited.")
    start: float | None = Field(default=None, description="Unix time the current attempt started.")
    stop: float | None = Field(default=None, description="Unix time the last attempt stopped.")
    nextAttemptAt: float | None = Field(default=None, description="Unix time of the next attempt.")
    results: dict[str, Any] | None = Field(default=None, description="Results, when small enough.")
    resultsTruncated: bool | None = Field(
        default=None, description="Results too large for the resource; read them in buckets."
    )
    resultsBytes: int | None = Field(default=None, description="Size of the results as JSON.")
    products: list[str] | None = Field(default=None, description="Data products made.")
    plots: list[str] | None = Field(default=None, description="Plots made.")
    history: list[AttemptRecord] = Field(
        default_factory=list, description="The last attempts, oldest first."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Succeeded, BackendSynced."
    )
    observedGeneration: int | None = Field(
        default=None, description="Generation of the spec observed."
    )
