"""Operator settings, read from ``WORKFLOW_OPERATOR_*`` environment variables.

One root object; every field is typed and documented with its unit and
default, so ``workflow operator run --help`` and the Helm chart can describe
them. Secrets (the buckets token) come from the environment the chart fills
from a Secret, never from a literal value.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from workflow.definitions.secrets import mounted_secrets_dir
from workflow.worktokens import check_key


class OperatorSettings(BaseSettings):
    """How the operator finds buckets, what it watches and how it runs Jobs."""

    model_config = SettingsConfigDict(
        env_prefix="WORKFLOW_OPERATOR_",
        secrets_dir=mounted_secrets_dir(),
        extra="ignore",
    )

    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to watch (JSON list or comma-separated); empty: the whole cluster.",
    )
    buckets_url: str = Field(
        default="http://127.0.0.1:8004",
        description="Base URL of buckets, as the operator reaches it.",
    )
    buckets_token: SecretStr | None = Field(
        default=None, description="Token the operator presents to buckets (from a Secret)."
    )
    buckets_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for one buckets request. Default 10."
    )
    job_buckets_url: str | None = Field(
        default=None, description="Base URL of buckets as pods reach it; default buckets_url."
    )
    job_token_secret: str = Field(
        default="workflow-buckets-token",
        description="Secret (in the Work's namespace) whose key `token` pods use when the "
        "Work names no tokenSecretRef; optional: pods start without it.",
    )
    token_signing_key: SecretStr | None = Field(
        default=None,
        description="Key (at least 32 bytes, from a Secret shared with buckets) that signs a "
        "token for each attempt, good only for that Work's buckets record until the attempt "
        "is over; pods get it from a Secret of the attempt. Unset: pods use job_token_secret.",
    )
    token_margin_seconds: int = Field(
        default=300,
        ge=0,
        description="Seconds an attempt's token outlives the longest the attempt can take "
        "(pending_timeout_seconds + the Work's timeout), to record its outcome. Default 300.",
    )
    image: str = Field(
        default="ghcr.io/workflow/workflow:0.1.0", description="Image of a Work with no spec.image."
    )
    image_pull_policy: str = Field(default="IfNotPresent", description="Pull policy of Work pods.")
    runner_command: list[str] = Field(
        default_factory=lambda: ["workflow", "run"],
        description="Command that starts the runner inside a Work's container.",
    )
    sites: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Sites this cluster performs; empty: any site."
    )
    results_cap_bytes: int = Field(
        default=64 * 1024,
        ge=0,
        description="Largest results kept on the Work resource, in bytes. Default 64 KiB.",
    )
    backoff_seconds: int = Field(
        default=10,
        ge=0,
        description="Seconds between attempts when spec.backoff is unset. Default 10.",
    )
    pending_timeout_seconds: int = Field(
        default=300,
        ge=1,
        description="Seconds a pod may wait (image pull, config error, unschedulable) before "
        "its attempt fails. Default 300.",
    )
    sync_backoff_max_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Longest wait between retries of a buckets write. Default 60.",
    )
    history_limit: int = Field(
        default=10, ge=1, description="Attempts kept in status.history. Default 10."
    )
    host_network: bool = Field(
        default=False,
        description="Run Work pods in the node's network namespace, for nodes whose pods "
        "reach buckets only on the host's addresses (default: false).",
    )
    run_as_user: int = Field(default=1000, ge=1, description="UID Work pods run as (non-root).")
    read_only_root: bool = Field(default=True, description="Mount the container's root read-only.")
    api_threads: int = Field(
        default=16, ge=1, description="Threads for Kubernetes API calls. Default 16."
    )
    workers: int = Field(
        default=32,
        ge=1,
        description="Works looked at at the same time (the rest wait in a queue). Default 32.",
    )
    resync_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest a Work waits between two looks at its Jobs. Default 30.",
    )

    @field_validator("namespaces", "sites", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        """Accept a JSON list or a comma-separated string."""
        if isinstance(value, str):
            import json

            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("token_signing_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is None or not key.get_secret_value():
            return None
        check_key(key.get_secret_value(), "token_signing_key")
        return key

    @property
    def pods_buckets_url(self) -> str:
        """Base URL of buckets as Work pods reach it."""
        return self.job_buckets_url or self.buckets_url
